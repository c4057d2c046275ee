/* The payload pattern the cross-language tests share with tests/c_abi.rs:
 * message `seq` is `seq % (slot_size + 1)` bytes long (so 0 B to the slot size all
 * occur), byte i is (seq * 31 + i) & 0xff. */
#ifndef PATTERN_H
#define PATTERN_H
#include <stddef.h>
#include <stdint.h>

static inline size_t pattern_len(uint64_t seq, size_t slot_size) {
  return (size_t)(seq % (uint64_t)(slot_size + 1));
}

static inline void pattern_fill(uint64_t seq, unsigned char *out, size_t len) {
  for (size_t i = 0; i < len; i++) out[i] = (unsigned char)((seq * 31 + i) & 0xff);
}

static inline int pattern_check(uint64_t seq, const unsigned char *got, size_t len,
                         size_t slot_size) {
  if (len != pattern_len(seq, slot_size)) return 0;
  for (size_t i = 0; i < len; i++)
    if (got[i] != (unsigned char)((seq * 31 + i) & 0xff)) return 0;
  return 1;
}
#endif
