/* Attach refuses a topic whose segment another user owns, unless that user is trusted.
 *   trust_check PREFIX TOPIC UID   (TOPIC exists, owned by UID, with one message)
 * Prints "RESULT checks=N failed=F". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ringcast.h"

int main(int argc, char **argv) {
  if (argc != 4) return 2;
  const char *prefix = argv[1], *topic = argv[2];
  uint32_t uid = (uint32_t)strtoul(argv[3], NULL, 10);
  char want[64];
  ringcast_subscriber_options opts;
  ringcast_subscriber *s = NULL;
  ringcast_sample sample;
  snprintf(want, sizeof want, "uid %u", uid);

  EXPECT(ringcast_subscriber_options_init(&opts), RINGCAST_OK);
  opts.prefix = prefix;
  opts.start = RINGCAST_START_OLDEST;
  /* Not trusted by default: refused, naming the owner; a wait does not wait it out. */
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_UNTRUSTED);
  EXPECT_TRUE(s == NULL && strstr(ringcast_last_error(), want) != NULL);
  EXPECT(ringcast_subscriber_attach(topic, &opts, 200000000LL, &s), RINGCAST_ERR_UNTRUSTED);
  /* A list without its array is an error, not a crash. */
  opts.trust_users_len = 1;
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_ERR_NULL);
  /* Trusted by user id: attached, and the message is there. */
  opts.trust_users = &uid;
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_OK);
  EXPECT(ringcast_subscriber_recv(s, 1000000000LL, &sample), RINGCAST_OK);
  EXPECT_TRUE(sample.len == 6 && memcmp(sample.data, "squat!", 6) == 0);
  EXPECT(ringcast_sample_release(s, &sample), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(s), RINGCAST_OK);
  /* Any owner. */
  opts.trust_users = NULL;
  opts.trust_users_len = 0;
  opts.trust_any_owner = 1;
  EXPECT(ringcast_subscriber_attach(topic, &opts, 0, &s), RINGCAST_OK);
  EXPECT(ringcast_subscriber_destroy(s), RINGCAST_OK);
  printf("RESULT checks=%d failed=%d\n", checks, failed);
  return failed == 0 ? 0 : 1;
}
