/* hilt's QEMU firmware: a boot banner, then a line-oriented command loop on UART0.
 * The commands and answers follow hilt's simulated device (crates/hilt-sim), so the same
 * suites drive both: ping, version, echo, reg read/write, hang, fault, reboot and
 * BenchCI's self-identification query. Lines end in CR LF; input lines in LF or CR.
 * FW_VERSION is set by build.sh (-DFW_VERSION="1.0.0"). */
#include <stdint.h>

#include "board.h"

#ifndef FW_VERSION
#define FW_VERSION "0.0.0"
#endif

#define HARDWARE_REVISION "qemu-lm3s6965evb"
#define SERIAL_NUMBER "QEMU-0001"
#define REGISTER_COUNT 16
#define LINE_MAX 128
#define RX_SIZE 256 /* a power of two */

static uint16_t regs[REGISTER_COUNT];
static volatile uint8_t rx_buf[RX_SIZE];
static volatile uint32_t rx_head, rx_tail;

/* ---- UART ------------------------------------------------------------------------- */

static void uart_init(void)
{
    UART_CR = 0;
    UART_IBRD = 27; /* 115200 baud from 50 MHz; QEMU ignores the rate */
    UART_FBRD = 8;
    UART_LCRH = 0x60; /* 8 data bits, no parity, one stop bit, FIFOs off */
    UART_IMSC = UART_INT_RX | UART_INT_RT;
    UART_CR = 0x301; /* UART, transmitter and receiver enabled */
    NVIC_ISER0 = 1u << UART0_IRQ;
}

void uart0_irq_handler(void)
{
    while (!(UART_FR & UART_FR_RXFE)) {
        uint8_t c = (uint8_t)UART_DR;
        if (rx_head - rx_tail < RX_SIZE) {
            rx_buf[rx_head % RX_SIZE] = c;
            rx_head++;
        }
    }
    UART_ICR = UART_INT_RX | UART_INT_RT;
}

static void put_char(char c)
{
    while (UART_FR & UART_FR_TXFF) {
    }
    UART_DR = (uint32_t)(uint8_t)c;
}

static void put_str(const char *s)
{
    while (*s) {
        put_char(*s++);
    }
}

static void put_line(const char *s)
{
    put_str(s);
    put_str("\r\n");
}

static void put_hex(uint32_t v, int digits)
{
    static const char hex[] = "0123456789ABCDEF";
    for (int i = digits - 1; i >= 0; i--) {
        put_char(hex[(v >> (4 * i)) & 0xF]);
    }
}

/* Waits for the next received byte, sleeping (WFI) while there is none. */
static uint8_t get_char(void)
{
    for (;;) {
        __asm volatile("cpsid i");
        if (rx_head != rx_tail) {
            uint8_t c = rx_buf[rx_tail % RX_SIZE];
            rx_tail++;
            __asm volatile("cpsie i");
            return c;
        }
        /* WFI wakes on a pending interrupt even while PRIMASK masks it. */
        __asm volatile("wfi");
        __asm volatile("cpsie i");
    }
}

/* ---- faults and stops ------------------------------------------------------------- */

static __attribute__((noreturn)) void stop_forever(void)
{
    __asm volatile("cpsid i");
    for (;;) {
        __asm volatile("wfi");
    }
}

void fault_report(const char *what, uint32_t pc)
{
    put_str("FAULT: ");
    put_str(what);
    put_str(" pc=0x");
    put_hex(pc, 8);
    put_str(" cfsr=0x");
    put_hex(SCB_CFSR, 8);
    put_str(" hfsr=0x");
    put_hex(SCB_HFSR, 8);
    put_str("\r\n");
    stop_forever();
}

/* ---- small string helpers (no C library) ------------------------------------------ */

static int str_eq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* Splits off the next whitespace-separated word; returns 0 when there is none. */
static char *next_word(char **cursor)
{
    char *p = *cursor;
    while (is_space(*p)) {
        p++;
    }
    if (!*p) {
        *cursor = p;
        return 0;
    }
    char *word = p;
    while (*p && !is_space(*p)) {
        p++;
    }
    if (*p) {
        *p++ = 0;
    }
    *cursor = p;
    return word;
}

/* Decimal or 0x-prefixed hexadecimal; returns 0 on anything else. */
static int parse_number(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int base = 10;
    if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
        base = 16;
        s += 2;
    }
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        uint32_t d;
        if (*s >= '0' && *s <= '9') {
            d = (uint32_t)(*s - '0');
        } else if (base == 16 && *s >= 'a' && *s <= 'f') {
            d = (uint32_t)(*s - 'a' + 10);
        } else if (base == 16 && *s >= 'A' && *s <= 'F') {
            d = (uint32_t)(*s - 'A' + 10);
        } else {
            return 0;
        }
        if (v > (0xFFFFFFFFu - d) / (uint32_t)base) {
            return 0;
        }
        v = v * (uint32_t)base + d;
    }
    *out = v;
    return 1;
}

/* ---- commands --------------------------------------------------------------------- */

static void error2(const char *a, const char *b, const char *c)
{
    put_str("error: ");
    put_str(a);
    put_str(b);
    put_line(c);
}

static int reg_addr(const char *text, uint32_t *addr)
{
    if (!parse_number(text, addr)) {
        error2("invalid register address '", text, "'");
        return 0;
    }
    if (*addr >= REGISTER_COUNT) {
        error2("register address ", text, " out of range (0x00..0x0F)");
        return 0;
    }
    return 1;
}

static void cmd_reg(char *rest)
{
    char *op = next_word(&rest);
    char *a = next_word(&rest);
    char *v = next_word(&rest);
    char *extra = next_word(&rest);
    uint32_t addr, value;
    if (op && a && !v && str_eq(op, "read")) {
        if (reg_addr(a, &addr)) {
            put_str("reg[0x");
            put_hex(addr, 2);
            put_str("]=0x");
            put_hex(regs[addr], 4);
            put_str("\r\n");
        }
    } else if (op && a && v && !extra && str_eq(op, "write")) {
        if (!reg_addr(a, &addr)) {
            return;
        }
        if (!parse_number(v, &value)) {
            error2("invalid register value '", v, "'");
        } else if (value > 0xFFFF) {
            error2("register value ", v, " out of range (0..0xFFFF)");
        } else {
            regs[addr] = (uint16_t)value;
            put_line("ok");
        }
    } else {
        put_line("error: usage: reg read <addr> | reg write <addr> <value>");
    }
}

static void reboot(void)
{
    put_line("rebooting");
    while (!(UART_FR & (1u << 7))) { /* TXFE: the last byte has left */
    }
    REG32(0xE000ED0Cu) = 0x05FA0004u; /* AIRCR: VECTKEY | SYSRESETREQ */
    stop_forever();
}

static void trigger_fault(void)
{
    /* An undefined instruction: a UsageFault, escalated to HardFault because the
     * configurable faults are not enabled. */
    __asm volatile("udf #0");
}

static void execute(char *line)
{
    char *rest = line;
    char *cmd = next_word(&rest);
    if (!cmd) {
        return;
    }
    if (str_eq(cmd, "echo")) {
        /* The text exactly as typed after the first space or tab. */
        put_line(rest);
        return;
    }
    if (str_eq(cmd, "reg")) {
        cmd_reg(rest);
        return;
    }
    char *extra = rest;
    if (next_word(&extra)) {
        if (str_eq(cmd, "ping") || str_eq(cmd, "version") || str_eq(cmd, "hang") ||
            str_eq(cmd, "fault") || str_eq(cmd, "reboot") || str_eq(cmd, "BENCHCI_ID?")) {
            error2(cmd, " takes no arguments", "");
        } else {
            error2("unknown command '", cmd, "'");
        }
        return;
    }
    if (str_eq(cmd, "ping")) {
        put_line("pong");
    } else if (str_eq(cmd, "version")) {
        put_line("version " FW_VERSION);
    } else if (str_eq(cmd, "hang")) {
        stop_forever();
    } else if (str_eq(cmd, "fault")) {
        trigger_fault();
    } else if (str_eq(cmd, "reboot")) {
        reboot();
    } else if (str_eq(cmd, "BENCHCI_ID?")) {
        put_line("BENCHCI_ID: {\"schema_version\":\"1\",\"hardware_revision\":\"" HARDWARE_REVISION
                 "\",\"serial_number\":\"" SERIAL_NUMBER "\"}");
    } else {
        error2("unknown command '", cmd, "'");
    }
}

int main(void)
{
    uart_init();
    put_line("HILT-QEMU DUT v" FW_VERSION " (lm3s6965evb)");
    put_line("ready");
    static char line[LINE_MAX];
    uint32_t len = 0;
    int overflow = 0;
    for (;;) {
        char c = (char)get_char();
        if (c == '\n' || c == '\r') {
            if (overflow) {
                put_line("error: line too long");
            } else {
                line[len] = 0;
                execute(line);
            }
            len = 0;
            overflow = 0;
        } else if (len < LINE_MAX - 1) {
            line[len++] = c;
        } else {
            overflow = 1;
        }
    }
}
