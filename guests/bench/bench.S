# bench: Keel's exit-cost benchmark guest (docs/performance.md). A 32-bit flat guest (docs/guests.md:
# protected mode, paging off, CS = 0x18, DS/ES/SS = 0x10, ESP = 0x80000, interrupts off).
#
# Under QEMU with `-icount shift=0` every emulated instruction advances the TSC by exactly one, so
# an RDTSC difference counts the instructions that everything executed meanwhile: this guest, Keel,
# its monitor and the emulated VMRUN. Each phase runs N iterations of a four-instruction loop
#
#     mov $0, %eax; PAYLOAD; dec %ebp; jnz 1b
#
# between two `lfence; rdtsc`, where PAYLOAD is
#     nop                   the baseline: no exit;
#     cpuid                 an exit answered in ring 0 (leaf 0);
#     out %al, %dx          to port BENCH_PORT, which no device claims: a round trip through the
#                           ring-3 monitor;
#     mov %eax, (%ebx)      a store to BENCH_GPA, which is not RAM and no device claims: a nested
#                           page fault, then decode and emulation in the monitor.
# Every phase runs ROUNDS times, interleaved; each keeps its minimum (a round may catch a host
# timer tick). Per phase it prints (minimum - baseline minimum) / N, the instructions one exit
# costs beyond the `nop` it replaces, truncated to two decimals:
#
#     bench: cpuid 1234.56
#     bench: pio 2345.67
#     bench: mmio 3456.78
#
# and a check that the measurement counts what it should: a four-instruction loop of CHECK_N
# iterations must measure 4.00 per iteration under icount (without icount the TSC counts host
# time, and the figures are only plausible, not exact):
#
#     bench: check 4.00 per iteration of a 4-instruction loop (4.00 under icount)
#
# Verdict: "PASS bench", or "FAIL bench: ..." if an exit phase was not slower than the baseline;
# then it writes the status to the debug-exit port 0xF4. Build: build.sh (GNU as --32, ld).
# Plain `as` input: no C preprocessor, so only `#` comments.

        .code32

        .set COM1_THR, 0x3F8            # transmit holding register
        .set COM1_LSR, 0x3FD            # line status register
        .set LSR_THRE, 0x20             # LSR bit 5: transmit holding register empty
        .set DEBUG_EXIT, 0xF4
        .set THRE_POLLS, 0x100000       # poll bound, so that a stuck UART cannot hang the guest

        .set N, 1000                    # iterations (exits) per phase
        .set ROUNDS, 8                  # runs of every phase; each phase keeps its minimum
        .set CHECK_N, 100000            # iterations of the check loop
        .set PHASES, 5                  # nop, cpuid, pio, mmio, check
        .set BENCH_PORT, 0x2F0          # no PC device is there; the monitor claims nothing there
        .set BENCH_GPA, 0x40000000      # 1 GiB: above the VM's RAM (16 MiB), nothing mapped there

        .section .text
        .globl _start
_start:
        cld
        movl    $msg_header, %esi
        call    puts

        movl    $ROUNDS, rounds_left
.Lround:
        xorl    %ebx, %ebx              # phase index
.Lphase:
        call    *phases(,%ebx,4)        # edx:eax = TSC difference; keeps %ebx
        leal    mins(,%ebx,8), %edi
        cmpl    4(%edi), %edx           # keep the minimum (64-bit unsigned compare)
        ja      .Lkeep
        jb      .Lsmaller
        cmpl    (%edi), %eax
        jae     .Lkeep
.Lsmaller:
        movl    %eax, (%edi)
        movl    %edx, 4(%edi)
.Lkeep:
        incl    %ebx
        cmpl    $PHASES, %ebx
        jb      .Lphase
        decl    rounds_left
        jnz     .Lround

        # The baseline, per iteration.
        movl    $msg_baseline, %esi
        call    puts
        movl    mins, %eax
        movl    mins+4, %edx
        movl    $N, %ecx
        call    print_ratio
        movl    $msg_baseline_end, %esi
        call    puts

        # Each exit phase: (minimum - baseline minimum) / N.
        movl    $1, %ebx
.Lreport:
        movl    names(,%ebx,4), %esi
        call    puts
        movl    mins(,%ebx,8), %eax
        movl    mins+4(,%ebx,8), %edx
        subl    mins, %eax
        sbbl    mins+4, %edx
        jc      .Lnot_slower            # borrow: the phase was faster than the baseline
        movl    %eax, %ecx
        orl     %edx, %ecx
        jnz     .Lprint
.Lnot_slower:
        movl    $1, failed
        xorl    %eax, %eax
        xorl    %edx, %edx
.Lprint:
        movl    $N, %ecx
        call    print_ratio
        movl    $msg_newline, %esi
        call    puts
        incl    %ebx
        cmpl    $4, %ebx
        jb      .Lreport

        # The check: the plain loop, per iteration.
        movl    $msg_check, %esi
        call    puts
        movl    mins+32, %eax
        movl    mins+36, %edx
        movl    $CHECK_N, %ecx
        call    print_ratio
        movl    $msg_check_end, %esi
        call    puts

        cmpl    $0, failed
        jne     .Lfail
        movl    $msg_pass, %esi
        call    puts
        xorl    %eax, %eax              # exit status 0
        jmp     .Lexit
.Lfail:
        movl    $msg_fail, %esi
        call    puts
        movl    $1, %eax                # exit status 1
.Lexit:
        outb    %al, $DEBUG_EXIT
1:      cli
        hlt
        jmp     1b

# The phases: each returns the TSC difference around its loop in edx:eax and keeps %ebx and %ebp.
# Only the loop body differs; every loop is four instructions, aligned alike. (The one set-up
# instruction of the pio and mmio phases inside the timed region adds 1/N to their figure.)
        .macro  START count
        pushl   %ebx
        pushl   %ebp
        movl    $\count, %ebp
        lfence
        rdtsc
        movl    %eax, t0
        movl    %edx, t0+4
        .endm
        .macro  STOP
        lfence
        rdtsc
        subl    t0, %eax
        sbbl    t0+4, %edx
        popl    %ebp
        popl    %ebx
        ret
        .endm

phase_nop:
        START   N
        .balign 16
1:      movl    $0, %eax
        nop
        decl    %ebp
        jnz     1b
        STOP

phase_cpuid:
        START   N
        .balign 16
1:      movl    $0, %eax
        cpuid
        decl    %ebp
        jnz     1b
        STOP

phase_pio:
        START   N
        movw    $BENCH_PORT, %dx
        .balign 16
1:      movl    $0, %eax
        outb    %al, %dx
        decl    %ebp
        jnz     1b
        STOP

phase_mmio:
        START   N
        movl    $BENCH_GPA, %ebx
        .balign 16
1:      movl    $0, %eax
        movl    %eax, (%ebx)
        decl    %ebp
        jnz     1b
        STOP

phase_check:
        START   CHECK_N
        .balign 16
1:      movl    $0, %eax
        nop
        decl    %ebp
        jnz     1b
        STOP

# div64: edx:eax / ecx -> quotient in edx:eax, remainder in ecx (ecx != 0).
div64:
        pushl   %ebx
        movl    %eax, %ebx              # low half
        movl    %edx, %eax
        xorl    %edx, %edx
        divl    %ecx                    # eax = high quotient, edx = high remainder
        xchgl   %eax, %ebx              # ebx = high quotient, eax = low half
        divl    %ecx                    # eax = low quotient, edx = remainder
        movl    %edx, %ecx
        movl    %ebx, %edx
        popl    %ebx
        ret

# print_u64: writes edx:eax in decimal. Clobbers eax, ecx, edx, esi.
print_u64:
        pushl   %edi
        movl    $digits_end, %edi
        movb    $0, (%edi)
1:      movl    $10, %ecx
        call    div64
        addb    $'0', %cl
        decl    %edi
        movb    %cl, (%edi)
        movl    %eax, %ecx
        orl     %edx, %ecx
        jnz     1b
        movl    %edi, %esi
        call    puts
        popl    %edi
        ret

# print_ratio: writes edx:eax / ecx with two decimals, truncated ("1234.56"); edx:eax < 2^57.
# Clobbers eax, ecx, edx, esi.
print_ratio:
        pushl   %ebx
        movl    %edx, %ebx              # edx:eax *= 100
        imull   $100, %ebx, %ebx
        pushl   %ecx
        movl    $100, %ecx
        mull    %ecx
        popl    %ecx
        addl    %ebx, %edx
        call    div64                   # hundredths
        movl    $100, %ecx
        call    div64                   # edx:eax = whole part, ecx = hundredths
        pushl   %ecx
        call    print_u64
        movb    $'.', %al
        call    putc
        popl    %eax
        xorl    %edx, %edx
        movl    $10, %ecx
        divl    %ecx                    # eax = tenths, edx = hundredths digit
        addb    $'0', %al
        call    putc
        movb    %dl, %al
        addb    $'0', %al
        call    putc
        popl    %ebx
        ret

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
        .balign 4
phases:
        .long   phase_nop, phase_cpuid, phase_pio, phase_mmio, phase_check
names:
        .long   0, name_cpuid, name_pio, name_mmio
name_cpuid:
        .asciz  "bench: cpuid "
name_pio:
        .asciz  "bench: pio "
name_mmio:
        .asciz  "bench: mmio "
msg_header:                             # (N and ROUNDS, spelled out)
        .ascii  "bench: instructions per exit (phase minimum - nop baseline) / 1000 exits, "
        .asciz  "minimum of 8 rounds\n"
msg_baseline:
        .asciz  "bench: baseline "
msg_baseline_end:
        .asciz  " per iteration (nop loop)\n"
msg_check:
        .asciz  "bench: check "
msg_check_end:
        .asciz  " per iteration of a 4-instruction loop (4.00 under icount)\n"
msg_newline:
        .asciz  "\n"
msg_pass:
        .asciz  "PASS bench\n"
msg_fail:
        .asciz  "FAIL bench: an exit phase was not slower than the nop baseline\n"

        .section .data
        .balign 8
mins:
        .fill   PHASES * 2, 4, 0xFFFFFFFF
t0:
        .quad   0
rounds_left:
        .long   0
failed:
        .long   0
digits:
        .fill   24, 1, 0
digits_end:
        .byte   0
