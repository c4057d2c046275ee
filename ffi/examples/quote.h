/* The quote message of the market-data examples: a plain C struct both sides agree on. */
#ifndef QUOTE_H
#define QUOTE_H
#include <stdint.h>

typedef struct quote {
  uint64_t seq;
  int64_t bid_ticks;
  int64_t ask_ticks;
  uint32_t bid_size;
  uint32_t ask_size;
  uint32_t instrument;
  uint32_t reserved;
} quote;

#endif
