# hello32: Keel's 32-bit test guest (docs/guests.md: a 32-bit ELF starts in flat 32-bit protected
# mode, paging off, CS = 0x18 with base 0 and limit 4 GiB, DS/ES/SS = 0x10, ESP = 0x80000,
# EDI = the RAM size, interrupts off).
#
# It prints two lines on COM1 (the 16550 at 0x3F8, polling LSR bit 5 before each byte), then
# writes 0 to the debug-exit port 0xF4, which stops the VM with exit status 0. If the VM goes on
# anyway, it halts with interrupts off for good.
#
# Verdict: "PASS hello32". Build: build.sh (GNU as --32 and ld -m elf_i386, linked at 1 MiB).
# Plain `as` input: no C preprocessor, so only `#` comments.

        .code32

        .set COM1_THR, 0x3F8            # transmit holding register
        .set COM1_LSR, 0x3FD            # line status register
        .set LSR_THRE, 0x20             # LSR bit 5: transmit holding register empty
        .set DEBUG_EXIT, 0xF4
        .set THRE_POLLS, 0x100000       # poll bound, so that a stuck UART cannot hang the guest

        .section .text
        .globl _start
_start:
        cld
        movl    $message, %esi
        call    puts
        xorl    %eax, %eax              # exit status 0
        outb    %al, $DEBUG_EXIT
1:      cli
        hlt
        jmp     1b

# puts: writes the NUL-terminated string at %esi to COM1, "\n" as "\r\n".
# Clobbers %eax and %esi.
puts:
        lodsb
        testb   %al, %al
        jz      3f
        cmpb    $'\n', %al
        jne     2f
        pushl   %eax
        movb    $'\r', %al
        call    putc
        popl    %eax
2:      call    putc
        jmp     puts
3:      ret

# putc: writes %al to COM1 once the transmitter is ready (or after THRE_POLLS polls).
# Clobbers %ah.
putc:
        pushl   %ecx
        pushl   %edx
        movb    %al, %ah                # the byte, while %al reads LSR
        movw    $COM1_LSR, %dx
        movl    $THRE_POLLS, %ecx
4:      inb     %dx, %al
        testb   $LSR_THRE, %al
        jnz     5f
        loop    4b
5:      movw    $COM1_THR, %dx
        movb    %ah, %al
        outb    %al, %dx
        popl    %edx
        popl    %ecx
        ret

        .section .rodata
message:
        .ascii  "Hello from a 32-bit guest\n"
        .asciz  "PASS hello32\n"
