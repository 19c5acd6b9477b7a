// Bounded, seeded fuzz run of ParseStoreNotification under ASan/UBSan: real
// Dovecot payloads mutated and spliced with JSON and IMAP-hostile tokens, plus
// random bytes. Checks what must hold for any input: no crash or overread, and
// an accepted notification carries only what may reach a device (flags that
// pass imap::IsFlag, mailbox and user names that pass imap::IsMailboxName,
// lists within the bounds); a refusal names a reason. Deterministic;
// PIMAP_FUZZ_ITERATIONS overrides the count.
#include <cstdint>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/imap/syntax.h"
#include "gtest/gtest.h"
#include "store/events/store_notification.h"

namespace pimap::store {
namespace {

const std::vector<std::string>& Seeds() {
  static const auto* seeds = new std::vector<std::string>{
      R"({"user":"alice","service":"lmtp","events":[{"event":"MessageNew","mailbox":"INBOX","uid":1,"uidvalidity":1795879213,"flags":[],"keywords":[]}],"status":{"INBOX":{"uidvalidity":1795879213,"uidnext":2,"highestmodseq":2}}})",
      R"({"user":"alice","events":[{"event":"FlagsClear","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":[],"flags_old":["\\Recent"],"keywords":[],"keywords_old":[]},{"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["\\Seen"],"keywords":["$Work"]}]})",
      R"({"user":"bob","events":[{"event":"FlagsSet","mailbox":"Work","uid":2,"uidvalidity":7,"flags":["\\Deleted"],"keywords":["$Junk"]},{"event":"FlagsClear","mailbox":"Work","uid":2,"uidvalidity":7,"flags":["\\Seen"],"keywords":["$Junk"]}]})",
      R"({"user":"bob","events":[{"event":"MailboxRename","mailbox":"New","mailbox_old":"Old"},{"event":"MailboxCreate","mailbox":"Entw\u00fcrfe"},{"event":"MessageExpunge","mailbox":"INBOX","uid":3,"uidvalidity":7}]})",
      R"({"user":"carol","events":[{"event":"MessageAppend","mailbox":"Sent","uid":5.0,"uidvalidity":9.0,"flags":{},"keywords":null}]})",
      R"({"user":"dave","events":[{"event":"MessageNew","mailbox":"INBOX","uid":4,"uidvalidity":9,"subject":"Gr\u00fc\u00dfe\r\n =?UTF-8?Q?x=0D?=","from":"=?ISO-8859-1?B?SvxyZ2Vu?= <j@example.org>"}]})",
  };
  return *seeds;
}

const std::vector<std::string>& Tokens() {
  static const auto* tokens =
      new std::vector<std::string>{"\"",
                                   "\\\"",
                                   ",",
                                   ":",
                                   "[",
                                   "]",
                                   "{",
                                   "}",
                                   "\\\\",
                                   "\\r\\n",
                                   "\\u0000",
                                   "\\ud800",
                                   "\\u00e9",
                                   ")",
                                   "(",
                                   " ",
                                   "*",
                                   "%",
                                   "\"\\\\Seen\"",
                                   "\"\\\\Flagged))\\r\\n* 1 EXPUNGE\"",
                                   "\"x\",",
                                   "\"flags\":[\"a\",\"A\"],",
                                   "\"keywords\":[\"k\"],",
                                   "4294967296",
                                   "-1",
                                   "1e400",
                                   "0",
                                   "null",
                                   "true",
                                   "{\"event\":\"FlagsSet\",\"mailbox\":"
                                   "\"INBOX\",\"uid\":1,\"uidvalidity\":7,"
                                   "\"flags\":[\"\\\\Draft\"]},",
                                   std::string(1, '\0'),
                                   "\xff",
                                   "\xc3\xa9",
                                   "\xed\xa0\x80"};
  return *tokens;
}

std::string Mutate(std::mt19937_64& rng) {
  std::string s = Seeds()[rng() % Seeds().size()];
  const int edits = static_cast<int>(rng() % 6);
  for (int i = 0; i < edits; ++i) {
    const size_t at = rng() % (s.size() + 1);
    switch (rng() % 4) {
      case 0:
        s.insert(at, Tokens()[rng() % Tokens().size()]);
        break;
      case 1:
        s.erase(at, rng() % 8);
        break;
      case 2:
        if (at < s.size()) s[at] = static_cast<char>(rng());
        break;
      default:
        s.insert(
            at, Seeds()[rng() % Seeds().size()].substr(rng() % 64, rng() % 96));
    }
  }
  return s;
}

void CheckAccepted(const StoreNotification& n,
                   const StoreNotificationLimits& limits) {
  EXPECT_TRUE(imap::IsMailboxName(n.user, limits.max_user_bytes)) << n.user;
  EXPECT_LE(n.events.size(), limits.max_events);
  for (const session::StoreEvent& e : n.events) {
    EXPECT_TRUE(imap::IsMailboxName(e.folder, limits.max_mailbox_bytes))
        << e.folder;
    if (!e.new_folder.empty()) {
      EXPECT_TRUE(imap::IsMailboxName(e.new_folder, limits.max_mailbox_bytes));
    }
    EXPECT_LE(e.flags.size(), limits.max_flags);
    for (const std::string& f : e.flags) {
      EXPECT_TRUE(imap::IsFlag(f)) << f;
      EXPECT_LE(f.size(), limits.max_flag_bytes);
    }
    if (e.headline != nullptr) {
      EXPECT_TRUE(limits.keep_headlines);
      for (const std::string* text :
           {&e.headline->subject, &e.headline->from}) {
        EXPECT_LE(text->size(), session::kMaxHeadlineBytes);
        for (char c : *text) {
          EXPECT_FALSE(static_cast<unsigned char>(c) < 0x20 || c == 0x7f);
        }
      }
    }
  }
  for (const FlagDelta& d : n.flag_deltas) {
    EXPECT_TRUE(imap::IsMailboxName(d.folder, limits.max_mailbox_bytes));
    for (const auto* list : {&d.added, &d.removed}) {
      for (const std::string& f : *list) EXPECT_TRUE(imap::IsFlag(f)) << f;
    }
  }
}

TEST(StoreNotificationFuzzTest, AnyInput) {
  int iterations = 20000;
  if (const char* env = std::getenv("PIMAP_FUZZ_ITERATIONS")) {
    iterations = std::atoi(env);
  }
  std::mt19937_64 rng(20261214);
  StoreNotificationLimits small;  // bounds a mutation can reach
  small.max_events = 4;
  small.max_flags = 3;
  small.max_flag_bytes = 8;
  small.max_user_bytes = 8;
  small.max_mailbox_bytes = 12;
  small.keep_headlines = true;
  int accepted = 0;
  for (int i = 0; i < iterations; ++i) {
    std::string input;
    if (i % 10 == 0) {
      input.resize(rng() % 512);
      for (char& c : input) c = static_cast<char>(rng());
    } else {
      input = Mutate(rng);
    }
    for (const StoreNotificationLimits& limits :
         {StoreNotificationLimits(), small}) {
      IntakeReject reason = IntakeReject::kCount;
      absl::StatusOr<StoreNotification> n =
          ParseStoreNotification(input, limits, &reason);
      if (n.ok()) {
        ++accepted;
        CheckAccepted(*n, limits);
      } else {
        ASSERT_LT(reason, IntakeReject::kCount)
            << testing::PrintToString(input);
      }
    }
  }
  // The run must exercise acceptance too, not only refusals.
  EXPECT_GT(accepted, iterations / 20);
}

}  // namespace
}  // namespace pimap::store
