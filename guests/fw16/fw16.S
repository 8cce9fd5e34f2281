/*
 * fw16: a 64 KiB firmware image that starts in the x86 reset state (docs/guests.md): real mode,
 * CS.base 0xFFFF0000, IP 0xFFF0, so its first instruction is the image's last 16 bytes at the
 * top of the 4 GiB space. Like a BIOS, it jumps to F000:entry, where the monitor's copy of the
 * image's last 128 KiB below 1 MiB makes the same code visible (linear 0xF0000 + offset); prints
 * a line on COM1 from real mode, switches itself to 32-bit protected mode (flat segments from its
 * own GDT, as a BIOS does before its POST code), prints its verdict from there and writes 0 to
 * the debug-exit port.
 */
.set BASE, 0xf0000              /* linear address of offset 0 while running from the copy */

.code16
.section .text
.org 0
entry:
    cli
    mov %cs, %ax
    mov %ax, %ds
    mov $msg16, %si
1:  lodsb
    test %al, %al
    jz 3f
    mov %al, %bl
    mov $0x3fd, %dx             /* wait for THR empty (LSR bit 5) */
2:  in %dx, %al
    test $0x20, %al
    jz 2b
    mov $0x3f8, %dx
    mov %bl, %al
    out %al, %dx
    jmp 1b
3:  lgdtl gdt_desc              /* DS = CS = 0xF000 */
    mov %cr0, %eax
    or $1, %eax                 /* PE */
    mov %eax, %cr0
    ljmpl $0x08, $(BASE + pm32)

.code32
pm32:
    mov $0x10, %ax
    mov %ax, %ds
    mov %ax, %es
    mov %ax, %ss
    mov $0x7000, %esp
    mov %cr0, %eax              /* the guest must see PE set */
    test $1, %al
    jz 6f
    mov $(BASE + msg32), %esi
4:  lodsb
    test %al, %al
    jz 6f
    mov %al, %bl
    mov $0x3fd, %dx
5:  in %dx, %al
    test $0x20, %al
    jz 5b
    mov $0x3f8, %dx
    mov %bl, %al
    out %al, %dx
    jmp 4b
6:  mov $0xf4, %dx
    xor %al, %al
    out %al, %dx
7:  hlt
    jmp 7b

msg16:
    .asciz "Hello from real mode at the reset vector\r\n"
msg32:
    .asciz "Hello from 32-bit protected mode\r\nPASS fw16\r\n"

.balign 8
gdt:
    .quad 0                     /* null */
    .quad 0x00cf9b000000ffff    /* 0x08: 32-bit code, base 0, limit 4 GiB, accessed */
    .quad 0x00cf93000000ffff    /* 0x10: data, base 0, limit 4 GiB, accessed */
gdt_end:
gdt_desc:
    .word gdt_end - gdt - 1
    .long BASE + gdt

.code16
.org 0xfff0
reset:
    ljmp $0xf000, $entry
.org 0x10000
