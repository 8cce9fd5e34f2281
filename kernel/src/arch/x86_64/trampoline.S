/*
 * The application-processor start-up trampoline.
 *
 * The BSP copies the bytes between trampoline_start and trampoline_end to a free page below 1 MiB,
 * fills in the tr_* fields (page tables, stack, entry point, far pointers; all relative to that
 * page), and sends INIT-SIPI-SIPI with the page number as the vector. The AP wakes in real mode at
 * CS:IP = (page << 8):0000, and goes real mode -> 32-bit protected mode -> long mode -> Rust.
 * See: SDM Vol 3A 9.4.4 (MP initialization example), 10.8.5 (initializing IA-32e mode).
 *
 * The code is position-independent: real mode addresses it through CS, the 32- and 64-bit parts
 * through EBX/RBX, which holds the page's linear address. It lives in .rodata: it is only copied,
 * never run where it is linked.
 */
.section .rodata
.balign 16
.global trampoline_start
.code16
trampoline_start:
    cli
    cld
    mov %cs, %ax
    mov %ax, %ds
    xor %ebx, %ebx
    mov %cs, %bx
    shl $4, %ebx                            /* EBX = linear address of this page */
    lgdtl (tr_gdt_pointer - trampoline_start)
    mov %cr0, %eax
    or $1, %eax                             /* PE */
    mov %eax, %cr0
    ljmpl *(tr_far32 - trampoline_start)

.code32
tr_code32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov %cr4, %eax
    or $(1 << 5), %eax                      /* PAE */
    mov %eax, %cr4
    mov (tr_cr3 - trampoline_start)(%ebx), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx                   /* EFER: LME, plus NXE if the BSP set it */
    rdmsr
    or (tr_efer - trampoline_start)(%ebx), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010000, %eax                    /* PG | WP */
    mov %eax, %cr0
    ljmpl *(tr_far64 - trampoline_start)(%ebx)

.code64
tr_code64:
    mov %ebx, %ebx                          /* upper halves are undefined after the switch */
    mov (tr_stack - trampoline_start)(%rbx), %rsp
    mov (tr_arg - trampoline_start)(%rbx), %rdi
    mov (tr_entry - trampoline_start)(%rbx), %rax
    xor %ebp, %ebp
    jmp *%rax

.balign 8
tr_gdt:
    .quad 0
    .quad 0x00cf9a000000ffff                /* 0x08: 32-bit code */
    .quad 0x00cf92000000ffff                /* 0x10: data */
    .quad 0x00af9a000000ffff                /* 0x18: 64-bit code */
tr_gdt_end:
.balign 8
.global tr_gdt_pointer
tr_gdt_pointer:
    .short tr_gdt_end - tr_gdt - 1
    .long 0                                 /* patched: page + (tr_gdt - trampoline_start) */
.balign 8
.global tr_far32
tr_far32:
    .long 0                                 /* patched: page + (tr_code32 - trampoline_start) */
    .short 0x08
.balign 8
.global tr_far64
tr_far64:
    .long 0                                 /* patched: page + (tr_code64 - trampoline_start) */
    .short 0x18
.balign 8
.global tr_cr3
tr_cr3:
    .quad 0
.global tr_efer
tr_efer:
    .quad 0
.global tr_stack
tr_stack:
    .quad 0
.global tr_arg
tr_arg:
    .quad 0
.global tr_entry
tr_entry:
    .quad 0
.global tr_gdt_offset
tr_gdt_offset:
    .quad tr_gdt - trampoline_start
.global tr_code32_offset
tr_code32_offset:
    .quad tr_code32 - trampoline_start
.global tr_code64_offset
tr_code64_offset:
    .quad tr_code64 - trampoline_start
.global trampoline_end
trampoline_end:
.code64
