/*
 * Keel's first instructions: the multiboot2 header and the 32-bit entry.
 *
 * GRUB (started by a BIOS or by UEFI) loads the kernel ELF at its physical addresses and jumps to
 * _start32 in 32-bit protected mode, paging off, with EAX = multiboot2 magic and EBX = the physical
 * address of the boot information. See: Multiboot2 specification 3.3 (I386 machine state).
 *
 * This stub checks for long mode, builds boot page tables that map the first 4 GiB three times
 * (identity, direct map at 0xffff800000000000, kernel at -2 GiB for the first 2 GiB), enables PAE,
 * long mode and paging, and calls kernel_main(magic, mbi_phys, boot_tsc) in the upper half (boot_tsc:
 * the TSC at the first instruction, from which `stats` measures the boot). The Rust kernel
 * then builds its real page tables; nothing here is used after that except the GDT until it loads
 * its own. See: SDM Vol 3A 10.8.5 (initializing IA-32e mode), APM Vol 2 14.6.
 *
 * It does not: parse anything, enable NX (Rust does it after checking CPUID), or touch the
 * framebuffer. This file is assembled into the kernel through global_asm! (AT&T syntax).
 */

.set KERNEL_VMA, 0xffffffff80000000
.set MB2_MAGIC, 0xe85250d6
.set MB2_ARCH_I386, 0
.set MB2_BOOTLOADER_MAGIC, 0x36d76289
.set COM1, 0x3f8

.section .multiboot_header, "a"
.balign 8
mb2_header_start:
    .long MB2_MAGIC
    .long MB2_ARCH_I386
    .long mb2_header_end - mb2_header_start
    .long 0x100000000 - (MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header_start))
    /* end tag */
    .balign 8
    .short 0
    .short 0
    .long 8
mb2_header_end:

.section .boot.text, "ax"
.code32
.global _start32
_start32:
    cli
    cld
    mov %eax, %edi                  /* magic: first argument of kernel_main */
    mov %ebx, %esi                  /* boot information: second argument */
    rdtsc                           /* the TSC at Keel's first instruction: third argument */
    mov %eax, boot_tsc
    mov %edx, boot_tsc + 4
    mov $boot_stack_top, %esp

    cmp $MB2_BOOTLOADER_MAGIC, %edi
    jne .Lno_multiboot

    /* Long mode present? See: SDM Vol 2A CPUID 80000001H EDX[29]. */
    mov $0x80000000, %eax
    cpuid
    cmp $0x80000001, %eax
    jb .Lno_long_mode
    mov $0x80000001, %eax
    cpuid
    test $(1 << 29), %edx
    jz .Lno_long_mode

    /* Zero the page-table area (GRUB zeroes .bss-like memory, but do not rely on it). */
    mov $boot_page_tables, %edi
    mov $(boot_page_tables_end - boot_page_tables) / 4, %ecx
    xor %eax, %eax
    rep stosl
    mov $MB2_BOOTLOADER_MAGIC, %edi /* restore the first argument */

    /* Four page directories of 2 MiB pages covering 0..4 GiB: entry i maps i * 2 MiB.
       Flags 0x83 = present | writable | page size. See: SDM Vol 3A Table 5-17 (PDE 2MB page). */
    xor %ecx, %ecx
1:  mov %ecx, %eax
    shl $21, %eax
    or $0x83, %eax
    mov %eax, boot_pd(,%ecx,8)
    inc %ecx
    cmp $2048, %ecx
    jne 1b

    /* Low PDPT: four entries, one per page directory. */
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt_low
    add $0x1000, %eax
    mov %eax, boot_pdpt_low + 8
    add $0x1000, %eax
    mov %eax, boot_pdpt_low + 16
    add $0x1000, %eax
    mov %eax, boot_pdpt_low + 24

    /* High PDPT: entries 510 and 511 map -2 GiB .. 0 onto physical 0 .. 2 GiB. */
    mov $boot_pd, %eax
    or $0x3, %eax
    mov %eax, boot_pdpt_high + 510 * 8
    add $0x1000, %eax
    mov %eax, boot_pdpt_high + 511 * 8

    /* PML4: 0 = identity (for this stub), 256 = direct map, 511 = kernel. */
    mov $boot_pdpt_low, %eax
    or $0x3, %eax
    mov %eax, boot_pml4
    mov %eax, boot_pml4 + 256 * 8
    mov $boot_pdpt_high, %eax
    or $0x3, %eax
    mov %eax, boot_pml4 + 511 * 8

    /* CR4.PAE, then CR3, then EFER.LME, then CR0.PG. See: SDM Vol 3A 10.8.5. */
    mov %cr4, %eax
    or $(1 << 5), %eax
    mov %eax, %cr4
    mov $boot_pml4, %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $(1 << 8), %eax
    wrmsr
    mov %cr0, %eax
    or $0x80010001, %eax            /* PG | WP | PE */
    mov %eax, %cr0

    lgdt boot_gdt_pointer
    ljmp $0x08, $.Llong_mode

.Lno_multiboot:
    mov $msg_no_multiboot, %ebx
    jmp .Lfail32
.Lno_long_mode:
    mov $msg_no_long_mode, %ebx
.Lfail32:
    /* Print the NUL-terminated string at EBX on COM1 (polling the transmit-empty bit), then halt. */
    mov $(COM1 + 5), %dx
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    movb (%ebx), %al
    test %al, %al
    jz 3f
    mov $COM1, %dx
    out %al, %dx
    inc %ebx
    mov $(COM1 + 5), %dx
    jmp 2b
3:  cli
    hlt
    jmp 3b

.code64
.Llong_mode:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    xor %ax, %ax
    mov %ax, %fs
    mov %ax, %gs
    /* Move the stack into the upper half (same physical memory) and call the kernel there. */
    movabs $KERNEL_VMA, %rax
    add %rax, %rsp
    mov %edi, %edi                  /* zero-extend the arguments: upper halves are undefined */
    mov %esi, %esi
    mov boot_tsc(%rip), %rdx
    xor %ebp, %ebp
    movabs $kernel_main, %rax
    call *%rax
4:  cli
    hlt
    jmp 4b

.section .boot.rodata, "a"
.balign 8
boot_gdt:
    .quad 0
    .quad 0x00af9a000000ffff        /* 0x08: 64-bit code, DPL 0 */
    .quad 0x00cf92000000ffff        /* 0x10: data, DPL 0 */
boot_gdt_end:
boot_gdt_pointer:
    .short boot_gdt_end - boot_gdt - 1
    .long boot_gdt
msg_no_multiboot:
    .asciz "keel: not started by a multiboot2 loader; boot Keel through GRUB\r\n"
msg_no_long_mode:
    .asciz "keel: this CPU has no 64-bit long mode; Keel needs an x86-64 CPU\r\n"

.section .boot.bss, "aw", @nobits
.balign 4096
.global boot_page_tables
boot_page_tables:
boot_pml4:
    .skip 4096
boot_pdpt_low:
    .skip 4096
boot_pdpt_high:
    .skip 4096
boot_pd:
    .skip 4096 * 4
boot_page_tables_end:
boot_tsc:
    .skip 8
.balign 16
boot_stack:
    .skip 65536
boot_stack_top:
