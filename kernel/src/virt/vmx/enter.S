/*
 * vmx_enter(regs, launched) -> status: run the guest of the current VMCS once (Intel syntax).
 *
 * VM entry loads the guest's RSP, RIP, RFLAGS, control, segment and debug registers and the MSRs
 * the VMCS switches from the VMCS; its other general-purpose registers and CR2 come from `regs`
 * here. VM exit loads the host's RSP and RIP from the VMCS: HOST_RSP is written below, right
 * before the entry, so it points at the saved callee-saved registers and the `regs` pointer;
 * HOST_RIP is vmx_exit_host_rip (set when the VMCS is built). The exit saves the guest's
 * registers and CR2 back into `regs`. See: SDM Vol 3C 27.3.2 (loading guest state), 28.5
 * (loading host state: RSP and RIP from the host-state area, RFLAGS = 2, so interrupts are off).
 *
 * `regs` is GuestRegs: [u64; 16] in hardware order (RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI,
 * R8-R15; the RSP slot is not used: the guest's RSP lives in the VMCS), then CR2.
 * `launched`: 0 for VMLAUNCH (a clear VMCS), else VMRESUME.
 * Returns 0 after a VM exit, 1 when the instruction failed with VMfailInvalid (CF), 2 with
 * VMfailValid (ZF; the VM-instruction error field says why). See: SDM Vol 3C 31.2.
 */
.section .text
.global vmx_enter
.global vmx_exit_host_rip
vmx_enter:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    push rdi                        /* regs: at [rsp] while the guest runs */
    mov eax, 0x6c14                 /* HOST_RSP */
    vmwrite rax, rsp
    jbe .Lvmx_failed
    mov rax, [rdi + 8*16]
    mov cr2, rax
    test rsi, rsi                   /* ZF: launch; the moves below keep the flags */
    mov rax, [rdi + 8*0]
    mov rcx, [rdi + 8*1]
    mov rdx, [rdi + 8*2]
    mov rbx, [rdi + 8*3]
    mov rbp, [rdi + 8*5]
    mov rsi, [rdi + 8*6]
    mov r8, [rdi + 8*8]
    mov r9, [rdi + 8*9]
    mov r10, [rdi + 8*10]
    mov r11, [rdi + 8*11]
    mov r12, [rdi + 8*12]
    mov r13, [rdi + 8*13]
    mov r14, [rdi + 8*14]
    mov r15, [rdi + 8*15]
    mov rdi, [rdi + 8*7]
    jnz .Lvmx_resume
    vmlaunch
    jmp .Lvmx_failed
.Lvmx_resume:
    vmresume
.Lvmx_failed:
    /* Still the host: CF = VMfailInvalid, ZF = VMfailValid (mov keeps the flags). */
    mov eax, 2
    jz .Lvmx_return
    mov eax, 1
    jmp .Lvmx_return

vmx_exit_host_rip:
    push rdi                        /* guest RDI; regs is now at [rsp + 8] */
    mov rdi, [rsp + 8]
    mov [rdi + 8*0], rax
    mov [rdi + 8*1], rcx
    mov [rdi + 8*2], rdx
    mov [rdi + 8*3], rbx
    mov [rdi + 8*5], rbp
    mov [rdi + 8*6], rsi
    mov [rdi + 8*8], r8
    mov [rdi + 8*9], r9
    mov [rdi + 8*10], r10
    mov [rdi + 8*11], r11
    mov [rdi + 8*12], r12
    mov [rdi + 8*13], r13
    mov [rdi + 8*14], r14
    mov [rdi + 8*15], r15
    pop rax
    mov [rdi + 8*7], rax
    mov rax, cr2
    mov [rdi + 8*16], rax
    xor eax, eax
.Lvmx_return:
    add rsp, 8                      /* the regs pointer */
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret
