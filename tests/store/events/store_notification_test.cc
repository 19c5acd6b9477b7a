// ParseStoreNotification: real Dovecot payloads (../shared/dev/dovecot-push.md)
// mapped to typed events; every field validated (table-driven, good and bad,
// with the refusal's reason); bounds; linear flag de-duplication.
#include "store/events/store_notification.h"

#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
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

// --outband-payload full: the headline of new mail, from what Dovecot sends
// (the subject decoded, the from raw: shared/dev/dovecot-push.md).
TEST(StoreNotificationTest, HeadlinesKeptOnlyWhenAsked) {
  const std::string json = R"({"user":"alice","service":"lmtp","events":[
    {"event":"MessageNew","mailbox":"INBOX","uid":7,"uidvalidity":9,"flags":[],
     "from":"=?UTF-8?Q?J=C3=BCrgen?= <j@example.org>","from_address":"j@example.org",
     "from_display_name":"J\u00fcrgen","subject":"Gr\u00fc\u00dfe\r\nfrom =?x?q?y?="},
    {"event":"MessageAppend","mailbox":"Work","uid":3,"uidvalidity":4,
     "from_address":"bob@example.org","subject":42},
    {"event":"MessageNew","mailbox":"INBOX","uid":8,"uidvalidity":9}]})";
  StoreNotification plain = Parse(json);
  ASSERT_EQ(plain.events.size(), 3u);
  for (const auto& e : plain.events) EXPECT_EQ(e.headline, nullptr);

  StoreNotificationLimits limits;
  limits.keep_headlines = true;
  absl::StatusOr<StoreNotification> n = ParseStoreNotification(json, limits);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(n->events.size(), 3u);
  ASSERT_NE(n->events[0].headline, nullptr);
  EXPECT_EQ(n->events[0].headline->subject, "Grüße from =?x?q?y?=");
  EXPECT_EQ(n->events[0].headline->from, "Jürgen <j@example.org>");
  // A subject that is no string is left out; from_address stands in.
  ASSERT_NE(n->events[1].headline, nullptr);
  EXPECT_EQ(n->events[1].headline->subject, "");
  EXPECT_EQ(n->events[1].headline->from, "bob@example.org");
  EXPECT_EQ(n->events[2].headline, nullptr);
  // Bounded, whatever the store sends.
  const std::string long_one = absl::StrCat(
      R"({"user":"a","events":[{"event":"MessageNew","mailbox":"INBOX","uid":1,)",
      R"("uidvalidity":1,"subject":")", std::string(100000, 'x'),
      R"(","from":")", std::string(100000, 'y'), R"("}]})");
  n = ParseStoreNotification(long_one, limits);
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(n->events[0].headline->subject, std::string(256, 'x'));
  EXPECT_EQ(n->events[0].headline->from, std::string(256, 'y'));
}

// Chaos defect 3: Dovecot's FlagsClear names the old system flags only when
// system flags change, the old keywords only when keywords do; the other list
// is [] though the message has some. Never taken for the whole list.
TEST(StoreNotificationTest, StoreSeenWithRecentNoiseIsResolvedFromTheStore) {
  // IMAP `UID STORE 1 +FLAGS (\Seen)`, verbatim.
  StoreNotification n = Parse(R"({"user": "alice", "service": "imap", "session": "bxWmtldhoK9/AAAB", "events": [
  {"event": "FlagsClear", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213, "flags": [], "flags_old": ["\\Recent"], "keywords": [], "keywords_old": []},
  {"event": "FlagsSet", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213, "flags": ["\\Seen"], "keywords": []},
  {"event": "MessageRead", "mailbox": "INBOX", "uid": 1, "uidvalidity": 1795879213}],
 "status": {"INBOX": {"uidvalidity": 1795879213, "uidnext": 3, "messages": 2, "unseen": 1, "highestmodseq": 4}}, "ts": 1795879215.3007})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);
  EXPECT_EQ(n.events[0].uid, 1u);
  // The message may have had keywords (keywords_old is [] all the same).
  EXPECT_TRUE(n.events[0].resolve);
  EXPECT_TRUE(n.events[0].flags.empty());
  EXPECT_EQ(n.events[0].modseq, 4u);
  ASSERT_EQ(n.flag_deltas.size(), 1u);
  EXPECT_THAT(n.flag_deltas[0].added, ElementsAre("\\Seen"));
  EXPECT_EQ(n.ignored, 2);  // the \Recent-only clear, MessageRead
}

TEST(StoreNotificationTest, KeywordSetOnASeenMessageIsResolvedFromTheStore) {
  // A message with \Seen, then STORE +FLAGS ($Chaos), as Dovecot posts it.
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"FlagsClear","mailbox":"INBOX","uid":30,"uidvalidity":7,"flags":[],"flags_old":[],"keywords":[],"keywords_old":[]},
    {"event":"FlagsSet","mailbox":"INBOX","uid":30,"uidvalidity":7,"flags":[],"keywords":["$Chaos"]}]})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_EQ(n.events[0].kind, EventKind::kFlags);
  EXPECT_TRUE(n.events[0].resolve);  // never FLAGS ($Chaos)
  EXPECT_TRUE(n.events[0].flags.empty());
}

TEST(StoreNotificationTest, FlagChangeOfAMessageNewInTheSamePostIsExact) {
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"MessageAppend","mailbox":"INBOX","uid":5,"uidvalidity":7,"flags":["\\Seen"],"keywords":["$A"]},
    {"event":"FlagsClear","mailbox":"INBOX","uid":5,"uidvalidity":7,"flags":[],"flags_old":[],"keywords":["$A"],"keywords_old":["$A"]},
    {"event":"FlagsSet","mailbox":"INBOX","uid":5,"uidvalidity":7,"flags":["\\Flagged"],"keywords":[]}]})");
  ASSERT_EQ(n.events.size(), 2u);
  EXPECT_EQ(n.events[1].kind, EventKind::kFlags);
  EXPECT_FALSE(n.events[1].resolve);
  EXPECT_THAT(n.events[1].flags, ElementsAre("\\Seen", "\\Flagged"));
  EXPECT_TRUE(n.flag_deltas.empty());
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
  EXPECT_TRUE(n.events[0].resolve);  // flags_old lists no flag here: unknown
  EXPECT_EQ(n.ignored, 1);
}

TEST(StoreNotificationTest, FlagsSetAloneIsResolvedFromTheStore) {
  // STORE 2 +FLAGS (\Deleted) on a message without \Recent in that session.
  StoreNotification n = Parse(R"({"user":"alice","events":[
    {"event":"FlagsSet","mailbox":"INBOX","uid":2,"uidvalidity":7,"flags":["\\Deleted"],"keywords":["$Junk"]},
    {"event":"MessageTrash","mailbox":"INBOX","uid":2,"uidvalidity":7}],
    "status":{"INBOX":{"uidvalidity":7,"highestmodseq":9}}})");
  ASSERT_EQ(n.events.size(), 1u);
  EXPECT_TRUE(n.events[0].resolve);
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
  EXPECT_TRUE(n.events[0].resolve);  // keywords unknown
  EXPECT_EQ(n.events[1].kind, EventKind::kExpunge);
  ASSERT_EQ(n.flag_deltas.size(), 1u);
  EXPECT_THAT(n.flag_deltas[0].added, ElementsAre("\\Answered"));
  EXPECT_THAT(n.flag_deltas[0].removed, ElementsAre("\\Seen"));
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

// One event in an otherwise valid notification: `field` replaced by `value`
// (raw JSON) in a MessageNew, FlagsClear or rename.
std::string With(const std::string& event) {
  return absl::StrCat(R"({"user":"alice","service":"imap","events":[)", event,
                      R"(],"status":{"INBOX":{"highestmodseq":5}}})");
}

struct FieldCase {
  const char* what;
  std::string json;
  bool ok;
  IntakeReject reason = IntakeReject::kCount;  // when !ok
};

TEST(StoreNotificationTest, EveryFieldIsValidated) {
  const std::string kNew =
      R"({"event":"MessageNew","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":FLAGS,"keywords":KW})";
  auto new_with = [&](const std::string& flags, const std::string& kw = "[]") {
    return With(absl::StrReplaceAll(kNew, {{"FLAGS", flags}, {"KW", kw}}));
  };
  auto box = [](const std::string& name) {
    return With(
        absl::StrCat(R"({"event":"MailboxCreate","mailbox":)", name, "}"));
  };
  const std::string long_flag(257, 'k');
  const std::string long_box(1025, 'b');
  const std::string long_user(257, 'u');
  using R = IntakeReject;
  const std::vector<FieldCase> cases = {
      // user
      {"user", R"({"user":"alice@example.org","events":[]})", true},
      {"user with space", R"({"user":"a b","events":[]})", true},
      {"user utf-8", R"({"user":"j\u00f6rg","events":[]})", true},
      {"user 256 bytes",
       absl::StrCat(R"({"user":")", std::string(256, 'u'), R"(","events":[]})"),
       true},
      {"no user", R"({"events":[]})", false, R::kBadUser},
      {"user number", R"({"user":7,"events":[]})", false, R::kBadUser},
      {"empty user", R"({"user":"","events":[]})", false, R::kBadUser},
      {"user CRLF", R"({"user":"a\r\nb","events":[]})", false, R::kBadUser},
      {"user NUL", R"({"user":"a\u0000b","events":[]})", false, R::kBadUser},
      {"user too long",
       absl::StrCat(R"({"user":")", long_user, R"(","events":[]})"), false,
       R::kUserTooLong},
      // service
      {"no service", R"({"user":"a","events":[]})", true},
      {"service number", R"({"user":"a","service":1,"events":[]})", false,
       R::kBadField},
      {"service CR", R"({"user":"a","service":"lm\rtp","events":[]})", false,
       R::kBadField},
      {"service long",
       absl::StrCat(R"({"user":"a","service":")", std::string(65, 's'),
                    R"(","events":[]})"),
       false, R::kBadField},
      // events
      {"events object", R"({"user":"a","events":{}})", false, R::kBadField},
      {"event number", R"({"user":"a","events":[1]})", false, R::kBadField},
      {"event without name", With(R"({"mailbox":"INBOX"})"), false,
       R::kBadField},
      {"event without mailbox", With(R"({"event":"MailboxCreate"})"), false,
       R::kBadField},
      // mailbox names
      {"mailbox", box(R"("Work/Reports 2024")"), true},
      {"mailbox utf-8", box(R"("Entw\u00fcrfe")"), true},
      {"mailbox mutf-7", box(R"("Entw&APw-rfe")"), true},
      {"mailbox quotes and parens", box(R"("a \"b\" (c) {3}")"), true},
      {"mailbox 1024 bytes",
       box(absl::StrCat("\"", std::string(1024, 'b'), "\"")), true},
      {"mailbox empty", box(R"("")"), false, R::kBadMailbox},
      {"mailbox CRLF", box(R"("INBOX\r\n* 1 EXPUNGE")"), false, R::kBadMailbox},
      {"mailbox NUL", box(R"("a\u0000")"), false, R::kBadMailbox},
      {"mailbox TAB", box(R"("a\tb")"), false, R::kBadMailbox},
      {"mailbox DEL", box(R"("a\u007f")"), false, R::kBadMailbox},
      {"mailbox number", box("5"), false, R::kBadField},
      {"mailbox too long", box(absl::StrCat("\"", long_box, "\"")), false,
       R::kMailboxTooLong},
      {"rename",
       With(R"({"event":"MailboxRename","mailbox":"B","mailbox_old":"A"})"),
       true},
      {"rename old CRLF",
       With(R"({"event":"MailboxRename","mailbox":"B","mailbox_old":"A\r\n"})"),
       false, R::kBadMailbox},
      {"rename old missing", With(R"({"event":"MailboxRename","mailbox":"B"})"),
       false, R::kBadField},
      {"rename old too long",
       With(absl::StrCat(
           R"({"event":"MailboxRename","mailbox":"B","mailbox_old":")",
           long_box, "\"}")),
       false, R::kMailboxTooLong},
      {"ignored event, bad mailbox",
       With(R"({"event":"MailboxSubscribe","mailbox":"a\nb"})"), false,
       R::kBadMailbox},
      // status
      {"status name CRLF",
       R"({"user":"a","events":[],"status":{"A\r\n":{"highestmodseq":1}}})",
       false, R::kBadMailbox},
      {"status modseq string",
       R"({"user":"a","events":[],"status":{"A":{"highestmodseq":"1"}}})",
       false, R::kBadField},
      {"status modseq negative",
       R"({"user":"a","events":[],"status":{"A":{"highestmodseq":-1}}})", false,
       R::kBadField},
      {"status null entry", R"({"user":"a","events":[],"status":{"A":null}})",
       true},
      // uid / uidvalidity
      {"uid 2^32-1",
       With(
           R"({"event":"MessageExpunge","mailbox":"INBOX","uid":4294967295,"uidvalidity":4294967295})"),
       true},
      {"uid 0",
       With(
           R"({"event":"MessageExpunge","mailbox":"INBOX","uid":0,"uidvalidity":7})"),
       false, R::kBadUid},
      {"uid 2^32",
       With(
           R"({"event":"MessageExpunge","mailbox":"INBOX","uid":4294967296,"uidvalidity":7})"),
       false, R::kBadUid},
      {"uid string",
       With(
           R"({"event":"MessageExpunge","mailbox":"INBOX","uid":"1","uidvalidity":7})"),
       false, R::kBadUid},
      {"uidvalidity missing",
       With(R"({"event":"FlagsSet","mailbox":"INBOX","uid":1,"flags":[]})"),
       false, R::kBadUid},
      // flags and keywords
      {"system flags",
       new_with(
           R"(["\\Seen","\\answered","\\FLAGGED","\\Deleted","\\Draft","\\Recent"])"),
       true},
      {"keywords",
       new_with("[]", R"(["$Forwarded","NonJunk","$MDNSent","[label"])"), true},
      {"flag 256 bytes",
       new_with("[]", absl::StrCat("[\"", std::string(256, 'k'), "\"]")), true},
      {"flags null", new_with("null"), true},
      {"flags {}", new_with("{}"), true},
      {"flags string", new_with(R"("\\Seen")"), false, R::kBadField},
      {"flags {x}", new_with(R"({"a":1})"), false, R::kBadField},
      {"flag number", new_with("[1]"), false, R::kBadFlag},
      {"flag empty", new_with(R"([""])"), false, R::kBadFlag},
      {"flag unknown system", new_with(R"(["\\Junk"])"), false, R::kBadFlag},
      {"flag \\*", new_with(R"(["\\*"])"), false, R::kBadFlag},
      {"flag with space", new_with(R"(["\\Seen \\Flagged"])"), false,
       R::kBadFlag},
      {"flag with paren", new_with(R"j(["\\Flagged))"])j"), false, R::kBadFlag},
      {"flag with CRLF", new_with(R"(["\\Flagged\r\n* 1 EXPUNGE"])"), false,
       R::kBadFlag},
      {"keyword with quote", new_with("[]", R"(["a\"b"])"), false, R::kBadFlag},
      {"keyword with brace", new_with("[]", R"(["{5}"])"), false, R::kBadFlag},
      {"keyword with ]", new_with("[]", R"(["a]"])"), false, R::kBadFlag},
      {"keyword with %", new_with("[]", R"(["a%"])"), false, R::kBadFlag},
      {"keyword 8-bit", new_with("[]", R"(["caf\u00e9"])"), false, R::kBadFlag},
      {"keyword NUL", new_with("[]", R"(["a\u0000"])"), false, R::kBadFlag},
      {"keyword too long",
       new_with("[]", absl::StrCat("[\"", long_flag, "\"]")), false,
       R::kFlagTooLong},
      {"flags_old bad",
       With(
           R"j({"event":"FlagsClear","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["\\Seen"],"flags_old":["x)"],"keywords":[],"keywords_old":[]})j"),
       false, R::kBadFlag},
      {"keywords_old bad",
       With(
           R"({"event":"FlagsClear","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["\\Seen"],"flags_old":[],"keywords":[],"keywords_old":["a b"]})"),
       false, R::kBadFlag},
      {"set flag bad",
       With(
           R"({"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":[],"keywords":["\r\n"]})"),
       false, R::kBadFlag},
      // not JSON
      {"garbage", "garbage", false, R::kBadJson},
      {"array", "[]", false, R::kBadJson},
      {"bad utf-8", "{\"user\":\"\xff\",\"events\":[]}", false, R::kBadJson},
      {"lone surrogate", R"({"user":"\ud800","events":[]})", false,
       R::kBadJson},
  };
  for (const FieldCase& c : cases) {
    IntakeReject reason = IntakeReject::kCount;
    absl::StatusOr<StoreNotification> n =
        ParseStoreNotification(c.json, {}, &reason);
    EXPECT_EQ(n.ok(), c.ok) << c.what << ": " << n.status();
    if (!c.ok) {
      EXPECT_EQ(reason, c.reason) << c.what << ": " << n.status();
      // The message names the field, never the value (it is logged).
      EXPECT_EQ(n.status().message().find('\r'), absl::string_view::npos)
          << c.what;
      EXPECT_EQ(n.status().message().find("EXPUNGE"), absl::string_view::npos)
          << c.what;
    }
  }
}

TEST(StoreNotificationTest, CountBoundsAreRefused) {
  StoreNotificationLimits limits;
  limits.max_events = 2;
  limits.max_flags = 3;
  limits.max_status_mailboxes = 1;
  IntakeReject reason = IntakeReject::kCount;
  const std::string expunge =
      R"({"event":"MessageExpunge","mailbox":"INBOX","uid":1,"uidvalidity":7})";
  EXPECT_TRUE(
      ParseStoreNotification(With(absl::StrCat(expunge, ",", expunge)), limits)
          .ok());
  EXPECT_FALSE(ParseStoreNotification(
                   With(absl::StrCat(expunge, ",", expunge, ",", expunge)),
                   limits, &reason)
                   .ok());
  EXPECT_EQ(reason, IntakeReject::kTooManyEvents);
  // flags + keywords of one event count together.
  const std::string three =
      R"({"event":"MessageNew","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["\\Seen","\\Draft"],"keywords":["k"]})";
  EXPECT_TRUE(ParseStoreNotification(With(three), limits).ok());
  const std::string four =
      R"({"event":"MessageNew","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["\\Seen","\\Draft"],"keywords":["k","l"]})";
  EXPECT_FALSE(ParseStoreNotification(With(four), limits, &reason).ok());
  EXPECT_EQ(reason, IntakeReject::kTooManyFlags);
  // One array past the bound is refused before its entries are looked at.
  const std::string array =
      R"({"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":["a","b","c","d"]})";
  EXPECT_FALSE(ParseStoreNotification(With(array), limits, &reason).ok());
  EXPECT_EQ(reason, IntakeReject::kTooManyFlags);
  // A message's merged list too (set after set in one POST).
  limits.max_events = 10;
  std::string sets;
  for (const char* k : {"a", "b", "c", "d"}) {
    absl::StrAppend(
        &sets, sets.empty() ? "" : ",",
        R"({"event":"FlagsSet","mailbox":"INBOX","uid":1,"uidvalidity":7,"keywords":[")",
        k, R"("]})");
  }
  EXPECT_FALSE(ParseStoreNotification(With(sets), limits, &reason).ok());
  EXPECT_EQ(reason, IntakeReject::kTooManyFlags);
  EXPECT_FALSE(ParseStoreNotification(
                   R"({"user":"a","events":[],"status":{"A":{},"B":{}}})",
                   limits, &reason)
                   .ok());
  EXPECT_EQ(reason, IntakeReject::kTooManyMailboxes);
}

TEST(StoreNotificationTest, TenThousandFlagsAreDeduplicatedInOrder) {
  // The de-duplication is linear (a hash set), so a list this long is fine;
  // what is checked here is the result: first spelling and order kept,
  // duplicates in any case dropped, across flags and keywords.
  StoreNotificationLimits limits;
  limits.max_flags = 20000;
  std::string flags, keywords;
  std::vector<std::string> want;
  for (int i = 0; i < 10000; ++i) {
    const std::string k = absl::StrCat("k", i % 5000);  // each twice
    absl::StrAppend(&flags, i ? "," : "", "\"",
                    i < 5000 ? k : absl::AsciiStrToUpper(k), "\"");
    if (i < 5000) want.push_back(k);
  }
  for (int i = 0; i < 10000; ++i) {
    absl::StrAppend(&keywords, i ? "," : "", "\"K", i % 5000, "\"");
  }
  absl::StatusOr<StoreNotification> n = ParseStoreNotification(
      With(absl::StrCat(
          R"({"event":"MessageNew","mailbox":"INBOX","uid":1,"uidvalidity":7,"flags":[)",
          flags, R"(],"keywords":[)", keywords, "]}")),
      limits);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(n->events.size(), 1u);
  EXPECT_EQ(n->events[0].flags, want);

  // The same through set/clear deltas of one message: 10k sets, then 5k
  // clears of every second one, then the cleared ones set again (to the end).
  std::string deltas =
      R"({"event":"MessageAppend","mailbox":"INBOX","uid":2,"uidvalidity":7,"flags":[],"keywords":[]})";
  std::string set_all, clear_half;
  for (int i = 0; i < 10000; ++i)
    absl::StrAppend(&set_all, i ? "," : "", "\"f", i, "\"");
  for (int i = 0; i < 10000; i += 2)
    absl::StrAppend(&clear_half, i ? "," : "", "\"F", i, "\"");
  absl::StrAppend(
      &deltas,
      R"(,{"event":"FlagsSet","mailbox":"INBOX","uid":2,"uidvalidity":7,"keywords":[)",
      set_all, "]}");
  absl::StrAppend(
      &deltas,
      R"(,{"event":"FlagsClear","mailbox":"INBOX","uid":2,"uidvalidity":7,"keywords":[)",
      clear_half, "]}");
  absl::StrAppend(
      &deltas,
      R"(,{"event":"FlagsSet","mailbox":"INBOX","uid":2,"uidvalidity":7,"keywords":[)",
      clear_half, "]}");
  n = ParseStoreNotification(With(deltas), limits);
  ASSERT_TRUE(n.ok()) << n.status();
  ASSERT_EQ(n->events.size(), 2u);  // the kNew, then the merged kFlags
  const std::vector<std::string>& got = n->events[1].flags;
  ASSERT_EQ(got.size(), 10000u);
  for (int i = 0; i < 5000; ++i)
    EXPECT_EQ(got[i], absl::StrCat("f", 2 * i + 1)) << i;
  for (int i = 0; i < 5000; ++i)
    EXPECT_EQ(got[5000 + i], absl::StrCat("F", 2 * i)) << i;
}

}  // namespace
}  // namespace pimap::store
