/* The few LM3S6965 registers the firmware touches. */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(addr))

/* UART0, an ARM PrimeCell PL011. */
#define UART0_BASE 0x4000C000u
#define UART_DR    REG32(UART0_BASE + 0x000)
#define UART_FR    REG32(UART0_BASE + 0x018)
#define UART_IBRD  REG32(UART0_BASE + 0x024)
#define UART_FBRD  REG32(UART0_BASE + 0x028)
#define UART_LCRH  REG32(UART0_BASE + 0x02C)
#define UART_CR    REG32(UART0_BASE + 0x030)
#define UART_IMSC  REG32(UART0_BASE + 0x038)
#define UART_ICR   REG32(UART0_BASE + 0x044)
#define UART_FR_RXFE (1u << 4)
#define UART_FR_TXFF (1u << 5)
#define UART_INT_RX  (1u << 4)
#define UART_INT_RT  (1u << 6)

/* System control block and NVIC. */
#define NVIC_ISER0 REG32(0xE000E100u)
#define SCB_CFSR   REG32(0xE000ED28u)
#define SCB_HFSR   REG32(0xE000ED2Cu)
#define UART0_IRQ  5

/* Prints a fault line and stops the CPU for good (defined in main.c). */
__attribute__((noreturn)) void fault_report(const char *what, uint32_t pc);

#endif
