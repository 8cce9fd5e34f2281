/*
 * Thread switching and the way into user mode.
 *
 * switch_context(save: *mut u64, next: u64): pushes the callee-saved registers on the current
 * kernel stack, stores RSP in *save, loads `next` (a stack saved the same way) and returns on
 * it. A new thread's stack is prepared so that this "returns" into thread_trampoline.
 *
 * enter_user(rip, rsp, arg): the first entry of a thread into ring 3, by IRETQ with IF set,
 * every other register cleared (nothing of the kernel leaks) and GS swapped to the user's.
 * See: SDM Vol 3A 7.14.2 (64-bit mode stack frame), Vol 2B IRET, SWAPGS.
 */
.section .text
.global switch_context
switch_context:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

.global thread_trampoline
thread_trampoline:
    call thread_first_run
    ud2

.global enter_user
enter_user:
    pushq $0x1b                 /* SS: user data | RPL 3 */
    push %rsi                   /* RSP */
    pushq $0x202                /* RFLAGS: IF */
    pushq $0x23                 /* CS: user code | RPL 3 */
    push %rdi                   /* RIP */
    mov %rdx, %rdi              /* the thread's argument */
    xor %eax, %eax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    swapgs
    iretq

/*
 * SYSCALL entry. The CPU put the user RIP in RCX and RFLAGS in R11, masked RFLAGS with FMASK
 * (interrupts off) and left RSP at the user stack. Switch to this thread's kernel stack via the
 * per-CPU area (GS after SWAPGS: +8 kernel stack top, +16 scratch for the user RSP), save a
 * SyscallFrame, call the Rust dispatcher, restore and SYSRET. See: SDM Vol 2B SYSCALL/SYSRET.
 */
.global syscall_entry
syscall_entry:
    swapgs
    mov %rsp, %gs:16
    mov %gs:8, %rsp
    pushq %gs:16                /* user RSP */
    push %rcx                   /* user RIP */
    push %r11                   /* user RFLAGS */
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    push %r9
    push %r8
    push %r10
    push %rdx
    push %rsi
    push %rdi
    push %rax
    mov %rsp, %rdi
    cld
    call syscall_dispatch
    pop %rax
    pop %rdi
    pop %rsi
    pop %rdx
    pop %r10
    pop %r8
    pop %r9
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    pop %r11
    pop %rcx
    pop %rsp
    swapgs
    sysretq
