/*
 * svm_enter(guest_vmcb_pa, host_vmcb_pa, gprs): run the guest once.
 *
 * VMRUN saves and restores only part of the host state (RAX, RSP, RIP, RFLAGS, control and
 * segment registers) and loads from the VMCB only RAX and RSP of the guest's general-purpose
 * registers. So: VMSAVE the host's hidden state (FS/GS/TR/LDTR bases, KernelGsBase, STAR/LSTAR/
 * CSTAR/SFMASK, SYSENTER) to the per-CPU host VMCB, load the guest's other registers from `gprs`,
 * VMLOAD + VMRUN + VMSAVE the guest, store its registers back, VMLOAD the host again.
 * The caller has cleared GIF (CLGI) and sets it after (STGI). See: APM Vol 2 15.5, 15.5.2.
 *
 * `gprs` is [u64; 16] in hardware order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8-R15); its
 * RAX and RSP slots are not used here (they live in the VMCB).
 */
.section .text
.global svm_enter
svm_enter:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    push %rdx                   /* gprs pointer: 16(%rsp) after the next two pushes */
    push %rsi                   /* host VMCB */
    mov %rsi, %rax
    vmsave %rax
    mov %rdi, %rax
    mov 8*3(%rdx), %rbx
    mov 8*1(%rdx), %rcx
    mov 8*5(%rdx), %rbp
    mov 8*6(%rdx), %rsi
    mov 8*7(%rdx), %rdi
    mov 8*8(%rdx), %r8
    mov 8*9(%rdx), %r9
    mov 8*10(%rdx), %r10
    mov 8*11(%rdx), %r11
    mov 8*12(%rdx), %r12
    mov 8*13(%rdx), %r13
    mov 8*14(%rdx), %r14
    mov 8*15(%rdx), %r15
    mov 8*2(%rdx), %rdx
    vmload %rax
    vmrun %rax
    vmsave %rax
    push %rdx                   /* guest RDX */
    mov 16(%rsp), %rdx          /* gprs pointer */
    mov %rbx, 8*3(%rdx)
    mov %rcx, 8*1(%rdx)
    mov %rbp, 8*5(%rdx)
    mov %rsi, 8*6(%rdx)
    mov %rdi, 8*7(%rdx)
    mov %r8, 8*8(%rdx)
    mov %r9, 8*9(%rdx)
    mov %r10, 8*10(%rdx)
    mov %r11, 8*11(%rdx)
    mov %r12, 8*12(%rdx)
    mov %r13, 8*13(%rdx)
    mov %r14, 8*14(%rdx)
    mov %r15, 8*15(%rdx)
    pop %rbx
    mov %rbx, 8*2(%rdx)
    pop %rax                    /* host VMCB */
    vmload %rax
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret
