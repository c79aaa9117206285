/* Startup code for the LM3S6965 (Cortex-M3): the vector table, the reset handler that
 * sets up .data and .bss before main, and the fault handlers. No C library. */
#include <stdint.h>

#include "board.h"

extern uint32_t _data_start, _data_end, _data_load, _bss_start, _bss_end, _stack_top;

int main(void);
void reset_handler(void);
void hard_fault_handler(void);
void uart0_irq_handler(void);

static void default_handler(void)
{
    fault_report("unexpected interrupt", 0);
}

/* Cortex-M3 system exceptions, then the LM3S6965's first six interrupts (UART0 is 5). */
__attribute__((section(".vectors"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))&_stack_top,
    reset_handler,
    default_handler,     /* NMI */
    hard_fault_handler,  /* HardFault */
    default_handler,     /* MemManage */
    default_handler,     /* BusFault */
    default_handler,     /* UsageFault */
    0, 0, 0, 0,
    default_handler,     /* SVCall */
    default_handler,     /* DebugMonitor */
    0,
    default_handler,     /* PendSV */
    default_handler,     /* SysTick */
    default_handler,     /* IRQ0 GPIO A */
    default_handler,     /* IRQ1 GPIO B */
    default_handler,     /* IRQ2 GPIO C */
    default_handler,     /* IRQ3 GPIO D */
    default_handler,     /* IRQ4 GPIO E */
    uart0_irq_handler,   /* IRQ5 UART0 */
};

void reset_handler(void)
{
    uint32_t *src = &_data_load;
    for (uint32_t *dst = &_data_start; dst < &_data_end;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = &_bss_start; dst < &_bss_end;) {
        *dst++ = 0;
    }
    main();
    for (;;) {
        __asm volatile("wfi");
    }
}

/* Finds the exception frame (MSP or PSP, from EXC_RETURN in lr) and reports the
 * faulting program counter, which the hardware stacked at frame[6]. */
__attribute__((naked)) void hard_fault_handler(void)
{
    __asm volatile(
        "tst lr, #4\n"
        "ite eq\n"
        "mrseq r0, msp\n"
        "mrsne r0, psp\n"
        "b hard_fault_report\n");
}

__attribute__((used)) void hard_fault_report(const uint32_t *frame)
{
    fault_report("HardFault", frame[6]);
}
