// NotifySpec (core/session/notify_spec.h): what of a NOTIFY command a parked
// client can be served, and the command that sets it again.
#include "core/session/notify_spec.h"

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace pimap::session {
namespace {

TEST(NotifySpecTest, ReadsSelectedAndOtherMailboxFilters) {
  absl::StatusOr<NotifySpec> spec = NotifySpec::Parse(
      "SET STATUS (selected (MessageNew MessageExpunge)) (subtree Lists "
      "(MessageNew MessageExpunge FlagChange)) (mailboxes (Work \"My Box\") "
      "(MailboxName))");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_FALSE(spec->none());
  EXPECT_TRUE(spec->selected().messages);
  EXPECT_FALSE(spec->selected().flags);
  EXPECT_TRUE(spec->EventsFor("Lists", '.').flags);
  EXPECT_TRUE(spec->EventsFor("Lists.a.b", '.').messages);
  EXPECT_FALSE(spec->EventsFor("Lists.a", '/').any());  // not its delimiter
  EXPECT_FALSE(spec->EventsFor("ListsX", '.').any());
  EXPECT_TRUE(spec->EventsFor("My Box", '.').mailbox_name);
  EXPECT_FALSE(spec->EventsFor("My Box", '.').messages);
  EXPECT_FALSE(spec->EventsFor("Other", '.').any());
  EXPECT_TRUE(spec->wants_mailbox_names());
  EXPECT_EQ(spec->SetCommand(false),
            "NOTIFY SET (selected (MessageNew MessageExpunge)) (subtree Lists "
            "(MessageNew MessageExpunge FlagChange)) (mailboxes (Work \"My "
            "Box\") (MailboxName))");
  EXPECT_EQ(spec->SetCommand(true).substr(0, 18), "NOTIFY SET STATUS ");
}

TEST(NotifySpecTest, PersonalAndInboxesCoverEveryMailboxAndInboxAnyCase) {
  absl::StatusOr<NotifySpec> spec =
      NotifySpec::Parse("set (inboxes (messagenew messageexpunge))");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->EventsFor("Anything/deep", 0).messages);
  EXPECT_FALSE(spec->selected().any());
  spec = NotifySpec::Parse("SET (mailboxes inbox (MessageNew MessageExpunge))");
  ASSERT_TRUE(spec.ok()) << spec.status();
  EXPECT_TRUE(spec->EventsFor("INBOX", '/').messages);
}

TEST(NotifySpecTest, NoneIsNone) {
  absl::StatusOr<NotifySpec> spec = NotifySpec::Parse("NONE");
  ASSERT_TRUE(spec.ok());
  EXPECT_TRUE(spec->none());
  EXPECT_EQ(spec->SetCommand(true), "");
}

TEST(NotifySpecTest, WhatNeedsTheStoresSessionIsUnimplemented) {
  for (const char* args : {
           "SET (selected (MessageNew (UID FLAGS) MessageExpunge))",
           "SET (personal (SubscriptionChange))",
           "SET (subscribed (MessageNew MessageExpunge))",
           "SET (personal (AnnotationChange))",
           "SET (selected (MailboxName))",
       }) {
    EXPECT_EQ(NotifySpec::Parse(args).status().code(),
              absl::StatusCode::kUnimplemented)
        << args;
  }
}

TEST(NotifySpecTest, BadSyntaxIsInvalidArgument) {
  for (const char* args : {
           "",
           "SET",
           "GET (selected (MessageNew MessageExpunge))",
           "SET (selected (MessageNew))",
           "SET selected",
           "SET (subtree (MessageNew MessageExpunge))",
           "NONE extra",
           "SET (selected \"MessageNew\")",
           "SET (nowhere (MessageNew))",
       }) {
    EXPECT_EQ(NotifySpec::Parse(args).status().code(),
              absl::StatusCode::kInvalidArgument)
        << args;
  }
}

TEST(NotifySpecTest, TooManyMailboxesAreNotServed) {
  std::string names;
  for (size_t i = 0; i <= NotifySpec::kMaxNames; ++i) {
    names += " m" + std::to_string(i);
  }
  EXPECT_EQ(NotifySpec::Parse("SET (mailboxes (" + names.substr(1) +
                              ") (MessageNew MessageExpunge))")
                .status()
                .code(),
            absl::StatusCode::kUnimplemented);
}

}  // namespace
}  // namespace pimap::session
