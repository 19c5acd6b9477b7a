// ParseStoreNotification: real Dovecot payloads (../shared/dev/dovecot-push.md)
// mapped to typed events.
#include "store/events/store_notification.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::store {
namespace {

using session::EventKind;
using ::testing::ElementsAre;

StoreNotification Parse(const std::string& json) {
  absl::StatusOr<StoreNotification> n = ParseStoreNotification(json);
  EXPECT_TRUE(n.ok()) << n.status();
  return n.ok() ? *n : StoreNotification();
}

TEST(StoreNotificationTest, LmtpDelivery) {
  StoreNotification n = Parse(R"({"user": "alice", "service": "lmtp", "session": "GH6yOS3xCmubOwAAg+zDdQ",
 "events": [{"event": "MessageNew", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213,
   "flags": [], "keywords": [], "from": "Sender Name <sender@example.org>",
   "from_address": "sender@example.org", "from_display_name": "Sender Name",
   "to": "alice@example.org", "to_address": "alice@example.org", "subject": "Delivered by LMTP",
   "snippet": "Hello Alice, first line of body.", "message_id": "<1795879213852762149@lab>",
   "date": 0, "tz": 0}],
 "status": {"INBOX": {"uidvalidity": 1795879213, "uidnext": 2, "messages": 1, "unseen": 1, "highestmodseq": 2}},
 "ts": 1795879214.0167})");
  EXPECT_EQ(n.user, "alice");
  EXPECT_EQ(n.service, "lmtp");
  ASSERT_EQ(n.events.size(), 1u);
  const session::StoreEvent& e = n.events[0];
  EXPECT_EQ(e.kind, EventKind::kNew);
  EXPECT_EQ(e.folder, "INBOX");
  EXPECT_EQ(e.uid, 1u);
  EXPECT_EQ(e.uidvalidity, 1795879213u);
  EXPECT_TRUE(e.flags.empty());
  EXPECT_EQ(e.modseq, 2u);
  EXPECT_EQ(e.internal_date, 0);
  EXPECT_TRUE(n.flag_deltas.empty());
}

TEST(StoreNotificationTest, AppendCarriesFlagsAndKeywordsWithoutRecent) {
  StoreNotification n = Parse(R"({"user":"alice","service":"imap","events":[
    {"event":"MessageAppend","mailbox":"Work","uid":1,"uidvalidity":1795879214,
     "flags":["\\Flagged","\\Recent"],"keywords":["$Label1"],"subject":"x","date":0,"tz":0}]})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kNew);
  EXPECT_EQ(n.events[0].folder, "Work");
  EXPECT_THAT(n.events[0].flags, ElementsAre("\\Flagged", "$Label1"));
  EXPECT_EQ(n.events[0].modseq, 0u);  // no status block
}

TEST(StoreNotificationTest, StoreSeenWithRecentNoiseGivesTheFullList) {
  // IMAP `UID STORE 1 +FLAGS (\Seen)`, verbatim.
  StoreNotification n = Parse(R"({"user": "alice", "service": "imap", "session": "bxWmtldhoK9/AAAB", "events": [
  {"event": "FlagsClear", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213, "flags": [], "flags_old": ["\\Recent"], "keywords": [], "keywords_old": []},
  {"event": "FlagsSet", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213, "flags": ["\\Seen"], "keywords": []},
  {"event": "MessageRead", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213}],
 "status": {"INBOX": {"uidvalidity": 1795879213, "uidnext": 3, "messages": 2, "unseen": 1, "highestmodseq": 4}}, "ts": 1795879215.3007})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);
  EXPECT_EQ(n.events[0].uid, 1u);
  EXPECT_THAT(n.events[0].flags, ElementsAre("\\Seen"));
  EXPECT_EQ(n.events[0].modseq, 4u);
  EXPECT_TRUE(n.flag_deltas.empty());
  EXPECT_EQ(n.ignored, 2);  // the \Recent-only clear, MessageRead
}

TEST(StoreNotificationTest, FlagsClearWithOldListGivesTheFullList) {
  // STORE 1 -FLAGS (\Seen)
  StoreNotification n = Parse(R"({"user":"alice","events":[{"event":"FlagsClear","mailbox":"INBOX","uid":1,"uidvalidity":1795879213,"flags":["\\Seen"],"flags_old":["\\Seen","\\Recent"],"keywords":[],"keywords_old":[]}]})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);
  EXPECT_TRUE(n.events[0].flags.empty());  // all flags cleared: a real, empty list
}

TEST(StoreNotificationTest, KeywordOnlyClearWithEmptySetNoise) {
  // STORE 1 -FLAGS ($Label1)
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"FlagsClear","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":[],"flags_old":["\\Flagged"],"keywords":["$Label1"],"keywords_old":["$Label1"]},
    {"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":[],"keywords":[]}]})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);
  EXPECT_THAT(n.events[0].flags, ElementsAre("\\Flagged"));
  EXPECT_EQ(n.ignored, 1);
}

TEST(StoreNotificationTest, FlagsSetAloneBecomesADelta) {
  // STORE 2 +FLAGS (\Deleted) on a message without \Recent in that session.
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"FlagsSet","mailbox":"INBOX","uid":2,"uidvalidity":7,"flags":["\\Deleted"],"keywords":["$Junk"]},
    {"event":"MessageTrash","mailbox":"INBOX","uid":2,"uidvalidity":7}],
    "status":{"INBOX":{"uidvalidity":7,"highestmodseq":9}}})");
  EXPECT_TRUE(n.events.empty());
  ASSERT_EQ(n.flag_deltas.size(), 1u);
  const FlagDelta& d = n.flag_deltas[0];
  EXPECT_EQ(d.folder, "INBOX");
  EXPECT_EQ(d.uid, 2u);
  EXPECT_EQ(d.uidvalidity, 7u);
  EXPECT_THAT(d.added, ElementsAre("\\Deleted", "$Junk"));
  EXPECT_TRUE(d.removed.empty());
  EXPECT_EQ(d.modseq, 9u);
}

TEST(StoreNotificationTest, SetThenClearOfOneMessageMergeInOrder) {
  // STORE FLAGS (\Answered): Dovecot reports the added and the removed ones.
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"FlagsSet","mailbox":"INBOX","uid":3,"uidvalidity":7,"flags":["\\Answered"],"keywords":[]},
    {"event":"MessageExpunge","mailbox":"INBOX","uid":1,"uidvalidity":7},
    {"event":"FlagsClear","mailbox":"INBOX","uid":3,"uidvalidity":7,"flags":["\\Seen"],"flags_old":["\\Seen","\\Answered"],"keywords":[],"keywords_old":[]}]})");
  ASSERT_EQ(n.events.size(), 2u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);  // at its first flag event
  EXPECT_EQ(n.events[0].uid, 3u);
  EXPECT_THAT(n.events[0].flags, ElementsAre("\\Answered"));
  EXPECT_EQ(n.events[1].kind, EventKind::kExpunge);
  EXPECT_TRUE(n.flag_deltas.empty());
}

TEST(StoreNotificationTest, ExpungeAndMailboxEvents) {
  StoreNotification n = Parse(R"({"user":"bob","events":[
    {"event":"MessageExpunge","mailbox":"Work2","uid":1,"uidvalidity":1795879214},
    {"event":"MessageExpunge","mailbox":"Work2","uid":2,"uidvalidity":1795879214},
    {"event":"MailboxCreate","mailbox":"Work"},
    {"event":"MailboxRename","mailbox":"Work2","mailbox_old":"Work"},
    {"event":"MailboxDelete","mailbox":"Work2"},
    {"event":"MailboxSubscribe","mailbox":"Work2"},
    {"event":"SomethingNew","mailbox":"Work2"}],
    "status":{"Work2":{"uidvalidity":1795879214,"highestmodseq":10}}})");
  ASSERT_EQ(n.events.size(), 5u);
  EXPECT_EQ(n.events[0].kind, EventKind::kExpunge);
  EXPECT_EQ(n.events[0].modseq, 10u);
  EXPECT_EQ(n.events[1].uid, 2u);
  EXPECT_EQ(n.events[2].kind, EventKind::kFolderCreated);
  EXPECT_EQ(n.events[2].folder, "Work");
  EXPECT_EQ(n.events[3].kind, EventKind::kFolderRenamed);
  EXPECT_EQ(n.events[3].folder, "Work");
  EXPECT_EQ(n.events[3].new_folder, "Work2");
  EXPECT_EQ(n.events[4].kind, EventKind::kFolderDeleted);
  EXPECT_EQ(n.ignored, 2);
}

TEST(StoreNotificationTest, IntegralFloatsAndEmptyObjectsAreAccepted) {
  StoreNotification n = Parse(R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":5.0,"uidvalidity":7.0,"flags":{}}]})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].uid, 5u);
}

TEST(StoreNotificationTest, RejectsMalformedNotifications) {
  const char* bad[] = {
      "",
      "garbage",
      "[]",
      R"({"events":[]})",
      R"({"user":"","events":[]})",
      R"({"user":"a"})",
      R"({"user":"a","events":{}})",
      R"({"user":"a","events":[1]})",
      R"({"user":"a","events":[{"event":"MessageNew"}]})",
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":1}]})",
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":0,"uidvalidity":1}]})",
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":4294967296,"uidvalidity":1}]})",
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":1.5,"uidvalidity":1}]})",
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":-1,"uidvalidity":1}]})",
      R"({"user":"a","events":[{"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":1,"flags":"\\Seen"}]})",
      R"({"user":"a","events":[{"event":"MailboxRename","mailbox":"X"}]})",
      R"({"user":"a","events":[]} trailing)",
      "{\"user\":\"\xff\",\"events\":[]}",
  };
  for (const char* json : bad) {
    EXPECT_FALSE(ParseStoreNotification(json).ok()) << json;
  }
  // Deep nesting is refused without recursion.
  std::string deep = R"({"user":"a","events":[],"x":)" + std::string(100000, '[');
  EXPECT_FALSE(ParseStoreNotification(deep).ok());
}

}  // namespace
}  // namespace pimap::store
