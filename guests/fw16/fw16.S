/*
 * fw16: a 64 KiB firmware image that starts in the x86 reset state (docs/guests.md): real mode,
 * CS.base 0xFFFF0000, IP 0xFFF0, so its first instruction is the image's last 16 bytes at the
 * top of the 4 GiB space. Like a BIOS, it jumps to F000:entry, where the monitor's copy of the
 * image's last 128 KiB below 1 MiB makes the same code visible; prints its verdict on COM1 and
 * writes 0 to the debug-exit port.
 */
.code16
.section .text
.org 0
entry:
    cli
    mov %cs, %ax
    mov %ax, %ds
    mov $msg, %si
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
3:  mov $0xf4, %dx
    xor %al, %al
    out %al, %dx
4:  hlt
    jmp 4b
msg:
    .asciz "Hello from real mode at the reset vector\r\nPASS fw16\r\n"

.org 0xfff0
reset:
    ljmp $0xf000, $entry
.org 0x10000
