// ParkedNotify (core/session/parked_notify.h): the STATUS and LIST lines a
// parked NOTIFY client gets for mailboxes other than its selected one, in the
// forms Dovecot 2.3 sends (observed: see the header).
#include "core/session/parked_notify.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/imap/limits.h"
#include "core/imap/response.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

imap::Response Parse(absl::string_view line) {
  absl::StatusOr<imap::Response> r = imap::ParseWholeResponse(
      absl::StrCat(line, "\r\n"), imap::ParserLimits{}, 1 << 20);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : imap::Response{};
}

StoreEvent Ev(EventKind kind, absl::string_view folder, uint32_t uid = 1) {
  StoreEvent e;
  e.kind = kind;
  e.folder = std::string(folder);
  e.uid = uid;
  e.uidvalidity = 5;
  return e;
}

ParkedNotify Make(absl::string_view spec, bool condstore = false) {
  absl::StatusOr<NotifySpec> parsed = NotifySpec::Parse(spec);
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  return ParkedNotify(*parsed, "INBOX", '.', condstore);
}

TEST(ParkedNotifyTest, NewMailAsksStatusAndTellsTheNumbers) {
  ParkedNotify n = Make("SET (personal (MessageNew MessageExpunge))");
  EXPECT_EQ(n.Apply(Ev(EventKind::kNew, "Work", 3)), "");
  EXPECT_EQ(n.Apply(Ev(EventKind::kNew, "Work", 4)), "");  // one STATUS
  EXPECT_EQ(n.Apply(Ev(EventKind::kNew, "INBOX", 4)),
            "");  // selected: not ours
  EXPECT_THAT(n.TakeStatusCommands(),
              ElementsAre("STATUS Work (MESSAGES UIDNEXT UIDVALIDITY UNSEEN)"));
  EXPECT_FALSE(n.has_pending());
  EXPECT_EQ(n.OnResponse(Parse("* STATUS Work (MESSAGES 4 UIDNEXT 5 "
                               "UIDVALIDITY 5 UNSEEN 2)")),
            "* STATUS Work (MESSAGES 4 UIDNEXT 5 UNSEEN 2)\r\n");
  // Only for a mailbox asked: anything else on the link is not the client's.
  EXPECT_EQ(n.OnResponse(Parse("* STATUS Other (MESSAGES 1)")), "");
  EXPECT_EQ(n.OnResponse(Parse("* 3 EXISTS")), "");
}

TEST(ParkedNotifyTest, FlagChangesTellUnseenOnlyWhenItMoved) {
  ParkedNotify n =
      Make("SET (personal (MessageNew MessageExpunge FlagChange))", true);
  n.Apply(Ev(EventKind::kFlags, "Work"));
  EXPECT_THAT(n.TakeStatusCommands(),
              ElementsAre("STATUS Work (MESSAGES UIDNEXT UIDVALIDITY UNSEEN "
                          "HIGHESTMODSEQ)"));
  EXPECT_EQ(n.OnResponse(Parse("* STATUS Work (MESSAGES 4 UIDNEXT 5 "
                               "UIDVALIDITY 5 UNSEEN 2 HIGHESTMODSEQ 9)")),
            "* STATUS Work (UNSEEN 2)\r\n");
  n.Apply(Ev(EventKind::kFlags, "Work"));
  n.TakeStatusCommands();
  EXPECT_EQ(n.OnResponse(Parse("* STATUS Work (MESSAGES 4 UIDNEXT 5 "
                               "UIDVALIDITY 5 UNSEEN 2 HIGHESTMODSEQ 10)")),
            "");
  // An expunge: the CONDSTORE client gets HIGHESTMODSEQ too.
  n.Apply(Ev(EventKind::kExpunge, "Work"));
  n.TakeStatusCommands();
  EXPECT_EQ(
      n.OnResponse(Parse("* STATUS Work (MESSAGES 3 UIDNEXT 5 "
                         "UIDVALIDITY 5 UNSEEN 1 HIGHESTMODSEQ 11)")),
      "* STATUS Work (MESSAGES 3 UIDNEXT 5 UNSEEN 1 HIGHESTMODSEQ 11)\r\n");
}

TEST(ParkedNotifyTest, WhatTheSpecLeavesOutTellsNothing) {
  ParkedNotify n = Make(
      "SET (selected (MessageNew MessageExpunge)) (subtree Lists (MessageNew "
      "MessageExpunge))");
  n.Apply(Ev(EventKind::kNew, "Work"));
  n.Apply(Ev(EventKind::kFlags, "Lists.a"));  // no FlagChange asked
  EXPECT_FALSE(n.has_pending());
  StoreEvent created = Ev(EventKind::kFolderCreated, "Lists.b", 0);
  EXPECT_EQ(n.Apply(created), "");  // no MailboxName asked
  n.Apply(Ev(EventKind::kNew, "Lists.b"));
  EXPECT_THAT(n.TakeStatusCommands(),
              ElementsAre(::testing::HasSubstr("Lists.b")));
  // A mailbox created while parked is new to the client: UIDVALIDITY too.
  EXPECT_EQ(
      n.OnResponse(Parse("* STATUS Lists.b (MESSAGES 1 UIDNEXT 2 "
                         "UIDVALIDITY 8 UNSEEN 1)")),
      "* STATUS Lists.b (MESSAGES 1 UIDNEXT 2 UIDVALIDITY 8 UNSEEN 1)\r\n");
}

TEST(ParkedNotifyTest, MailboxNamesAreListLines) {
  ParkedNotify n = Make("SET (personal (MailboxName))");
  EXPECT_EQ(n.Apply(Ev(EventKind::kFolderCreated, "New One", 0)),
            "* LIST () \".\" \"New One\"\r\n");
  EXPECT_EQ(n.Apply(Ev(EventKind::kFolderDeleted, "Gone", 0)),
            "* LIST (\\NonExistent) \".\" Gone\r\n");
  StoreEvent renamed = Ev(EventKind::kFolderRenamed, "Old", 0);
  renamed.new_folder = "New";
  EXPECT_EQ(n.Apply(renamed), "* LIST () \".\" New (\"OLDNAME\" (Old))\r\n");
  // The store's own line, when the event has it, as it is.
  StoreEvent raw = Ev(EventKind::kFolderCreated, "X", 0);
  raw.raw = "* LIST (\\HasNoChildren) \"/\" X";
  EXPECT_EQ(n.Apply(raw), "* LIST (\\HasNoChildren) \"/\" X\r\n");
  // Message events: MailboxName alone asks no STATUS.
  n.Apply(Ev(EventKind::kNew, "Work"));
  EXPECT_FALSE(n.has_pending());
}

TEST(ParkedNotifyTest, PendingMailboxesAreBounded) {
  ParkedNotify n = Make("SET (personal (MessageNew MessageExpunge))");
  for (size_t i = 0; i <= ParkedNotify::kMaxPending; ++i) {
    n.Apply(Ev(EventKind::kNew, absl::StrCat("box", i)));
  }
  EXPECT_TRUE(n.overflowed());
  EXPECT_EQ(n.TakeStatusCommands().size(), ParkedNotify::kMaxPending);
}

TEST(ParkedNotifyTest, UnansweredMailboxesAreForgottenAtTheRoundsEnd) {
  ParkedNotify n = Make("SET (personal (MessageNew MessageExpunge))");
  n.Apply(Ev(EventKind::kNew, "Work"));
  n.TakeStatusCommands();
  n.EndStatusRound();  // the store said NO (deleted meanwhile)
  EXPECT_EQ(n.OnResponse(Parse("* STATUS Work (MESSAGES 1 UIDNEXT 2 "
                               "UNSEEN 1)")),
            "");
  EXPECT_THAT(n.TakeStatusCommands(), IsEmpty());
}

}  // namespace
}  // namespace pimap::session
