/* The C test programs' checks: EXPECT(call, status) and EXPECT_TRUE(cond) count every
 * check and report each failure with the line, the call and ringcast_last_error(). */
#ifndef RINGCAST_TEST_CHECK_H
#define RINGCAST_TEST_CHECK_H

#include <stdio.h>

#include "ringcast.h"

static int checks, failed;

#define EXPECT(call, want)                                                          \
  do {                                                                              \
    ringcast_status got_ = (call);                                                  \
    checks++;                                                                       \
    if (got_ != (want)) {                                                           \
      failed++;                                                                     \
      fprintf(stderr, "line %d: %s gave %d (%s), want %d; last error: %s\n",        \
              __LINE__, #call, (int)got_, ringcast_status_str(got_), (int)(want),   \
              ringcast_last_error());                                               \
    }                                                                               \
  } while (0)

#define EXPECT_TRUE(cond)                                          \
  do {                                                             \
    checks++;                                                      \
    if (!(cond)) {                                                 \
      failed++;                                                    \
      fprintf(stderr, "line %d: %s is false\n", __LINE__, #cond); \
    }                                                              \
  } while (0)

#endif
