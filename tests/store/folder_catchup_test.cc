// FolderCatchUp (store/folder_catchup.h): the watch's folders other than INBOX,
// fed with store responses as Dovecot 2.3 sends them (parsed, no sockets).
#include "store/folder_catchup.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/core/imap/test_util.h"

namespace pimap::store {
namespace {

using session::EventKind;
using session::StoreEvent;

imap::Response R(absl::string_view line) {
  absl::StatusOr<imap::Response> r =
      imap::testing::ParseResponseBytes(absl::StrCat(line, "\r\n"));
  EXPECT_TRUE(r.ok()) << line << ": " << r.status();
  return r.ok() ? *r : imap::Response();
}

// Folders Work (uv 7, modseq 10, uidnext 5) and Play (uv 8, modseq 3, uidnext
// 2) baselined; INBOX listed too (never tracked here).
FolderCatchUp Baselined(
    size_t max_folders = FolderCatchUp::kDefaultMaxFolders) {
  FolderCatchUp f(max_folders);
  f.BeginBaseline();
  f.OnStatus(R("* STATUS INBOX (UIDVALIDITY 1 UIDNEXT 9 HIGHESTMODSEQ 20)"));
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.OnStatus(R("* STATUS \"Play\" (UIDVALIDITY 8 UIDNEXT 2 HIGHESTMODSEQ 3)"));
  f.EndBaseline(true);
  return f;
}

std::vector<StoreEvent> RunCatchUp(FolderCatchUp& f,
                                   const std::string& expect_command,
                                   const std::vector<std::string>& untagged,
                                   bool ok = true) {
  EXPECT_EQ(f.StartNext(), expect_command);
  for (const std::string& line : untagged) {
    imap::Response r = R(line);
    if (r.is_status()) {
      f.OnCode(r.code);
    } else if (r.name == "FETCH") {
      f.OnFetch(r);
    } else if (r.name == "VANISHED") {
      f.OnVanished(r);
    }
  }
  return f.Finish(ok);
}

TEST(FolderCatchUpTest, BaselineTracksEveryFolderButInbox) {
  FolderCatchUp f = Baselined();
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.Find("INBOX"), nullptr);
  ASSERT_NE(f.Find("Work"), nullptr);
  EXPECT_EQ(f.Find("Work")->uidvalidity, 7u);
  EXPECT_EQ(f.Find("Work")->modseq, 10u);
  EXPECT_EQ(f.Find("Work")->uidnext, 5u);
  ASSERT_NE(f.Find("Play"), nullptr);
  EXPECT_FALSE(f.queued());
}

TEST(FolderCatchUpTest, FoldersOfOtherNamespacesAreNotTracked) {
  // The store's NAMESPACE: a public namespace beside the personal one.
  session::StoreNamespaces namespaces;
  absl::StatusOr<imap::Namespaces> parsed = imap::Namespaces::FromResponse(
      R("* NAMESPACE ((\"\" \".\")) NIL ((\"Public.\" \".\"))"));
  ASSERT_TRUE(parsed.ok()) << parsed.status();
  namespaces.Learn(*std::move(parsed));
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.OnStatus(
      R("* STATUS Public.News (UIDVALIDITY 9 UIDNEXT 3 HIGHESTMODSEQ 4)"));
  f.EndBaseline(true);
  EXPECT_NE(f.Find("Work"), nullptr);
  EXPECT_EQ(f.Find("Public.News"), nullptr);
  // Neither a change the store reports nor a creation makes it tracked: the
  // watch's NOTIFY `personal` would never report its changes.
  f.OnStatus(R("* STATUS Public.News (UIDNEXT 4 HIGHESTMODSEQ 5)"));
  f.OnCreated("Public.Other");
  f.OnRenamed("Work", "Public.Work");
  EXPECT_EQ(f.Find("Public.Other"), nullptr);
  EXPECT_EQ(f.Find("Public.Work"), nullptr);
  EXPECT_EQ(f.Find("Work"), nullptr);
  EXPECT_FALSE(f.queued());
}

// The store's NAMESPACE: a public namespace beside the personal one.
session::StoreNamespaces PublicNamespace() {
  session::StoreNamespaces namespaces;
  absl::StatusOr<imap::Namespaces> parsed = imap::Namespaces::FromResponse(
      R("* NAMESPACE ((\"\" \".\")) NIL ((\"Public.\" \".\"))"));
  EXPECT_TRUE(parsed.ok()) << parsed.status();
  if (parsed.ok()) namespaces.Learn(*std::move(parsed));
  return namespaces;
}

// A public folder a device has selected is named in the NOTIFY: tracked
// despite the namespace rule, baselined by its first look, then caught up
// like any other; no longer covered, it is dropped.
TEST(FolderCatchUpTest,
     CoveredFolderOfAnotherNamespaceIsTrackedFromItsFirstLook) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.EndBaseline(true);
  // Personal names and INBOX are covered by `personal` and `selected`.
  EXPECT_TRUE(f.SetCovered({"Public.News", "Work", "INBOX", "Public.News"}));
  EXPECT_EQ(f.covered(), std::vector<std::string>{"Public.News"});
  EXPECT_FALSE(f.SetCovered({"Public.News"}));  // the same set: no change
  ASSERT_NE(f.Find("Public.News"), nullptr);
  EXPECT_EQ(f.Find("Public.News")->uidvalidity, 0u);  // not covered yet
  EXPECT_EQ(
      RunCatchUp(f, "EXAMINE \"Public.News\"",
                 {"* OK [UIDVALIDITY 9] Ok", "* OK [HIGHESTMODSEQ 4] Highest",
                  "* OK [UIDNEXT 3] Predicted next UID"})
          .size(),
      0u);
  ASSERT_NE(f.Find("Public.News"), nullptr);
  EXPECT_EQ(f.Find("Public.News")->uidvalidity, 9u);
  // Another user appends there: the store's NOTIFY STATUS, then a catch-up.
  f.OnStatus(
      R("* STATUS Public.News (MESSAGES 1 UIDNEXT 4 UNSEEN 1 "
        "HIGHESTMODSEQ 5)"));
  ASSERT_TRUE(f.queued());
  std::vector<StoreEvent> events =
      RunCatchUp(f, "EXAMINE \"Public.News\" (QRESYNC (9 4))",
                 {"* OK [UIDVALIDITY 9] Ok", "* OK [HIGHESTMODSEQ 5] Highest",
                  "* OK [UIDNEXT 4] Predicted next UID",
                  "* 1 FETCH (UID 3 FLAGS () MODSEQ (5))"});
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, EventKind::kNew);
  EXPECT_EQ(events[0].folder, "Public.News");
  EXPECT_EQ(events[0].uid, 3u);
  // Left: dropped (the store no longer reports it); personal ones stay.
  EXPECT_TRUE(f.SetCovered({}));
  EXPECT_EQ(f.Find("Public.News"), nullptr);
  EXPECT_NE(f.Find("Work"), nullptr);
  f.OnStatus(R("* STATUS Public.News (UIDNEXT 5 HIGHESTMODSEQ 6)"));
  EXPECT_FALSE(f.queued());
}

// Covered before the first listing: tracked when it succeeds. A listing
// that shows a covered folder (or not) never reports it as created or
// deleted: it is not the user's folder; its own look says if it is there.
TEST(FolderCatchUpTest, CoveredFoldersAreNoFolderChangesOfTheUser) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  EXPECT_TRUE(f.SetCovered({"Public.News", "Public.Gone"}));
  EXPECT_EQ(f.Find("Public.News"), nullptr);  // nothing tracked before
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.OnStatus(
      R("* STATUS Public.News (UIDVALIDITY 9 UIDNEXT 3 HIGHESTMODSEQ 4)"));
  f.EndBaseline(true);
  ASSERT_NE(f.Find("Public.News"), nullptr);
  ASSERT_NE(f.Find("Public.Gone"), nullptr);
  EXPECT_EQ(f.queue_size(), 2u);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Public.Gone\"");
  EXPECT_TRUE(f.Finish(false).empty());  // no such folder: not covered
  EXPECT_EQ(f.Find("Public.Gone"), nullptr);
  RunCatchUp(f, "EXAMINE \"Public.News\"",
             {"* OK [UIDVALIDITY 9] Ok", "* OK [HIGHESTMODSEQ 4] Highest",
              "* OK [UIDNEXT 3] Predicted next UID"});
  // Listed again without it (a store that lists no other users' folders):
  // no deletion, a look instead.
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  EXPECT_TRUE(f.EndBaseline(true).empty());
  ASSERT_NE(f.Find("Public.News"), nullptr);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Public.News\" (QRESYNC (9 4))");
  f.Abort();
  // Renamed into the public namespace while covered: a first look again.
  EXPECT_TRUE(f.SetCovered({"Public.News", "Public.Work"}));
  f.OnRenamed("Work", "Public.Work");
  ASSERT_NE(f.Find("Public.Work"), nullptr);
  EXPECT_EQ(f.Find("Public.Work")->uidvalidity, 0u);
}

// A device selected the folder before the watch looked: the first look
// starts from the device's view, so what came in between is reported.
TEST(FolderCatchUpTest, CoveredFolderFirstLookStartsFromTheDevicesView) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  std::vector<std::string> asked;
  f.set_view_source([&asked](absl::string_view folder) {
    asked.emplace_back(folder);
    session::ViewStart view;
    view.modseq = 4;
    view.top_uid = 2;
    view.uidvalidity = 9;
    return view;
  });
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.EndBaseline(true);
  f.SetCovered({"Public.News"});
  f.OnCreated("Mine");  // a personal folder's first look is the store's state
  std::vector<StoreEvent> events = RunCatchUp(
      f, "EXAMINE \"Public.News\" (QRESYNC (9 4))",
      {"* OK [UIDVALIDITY 9] Ok", "* OK [HIGHESTMODSEQ 6] Highest",
       "* OK [UIDNEXT 4] Predicted next UID", "* VANISHED (EARLIER) 1",
       "* 2 FETCH (UID 3 FLAGS () MODSEQ (6))"});
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].kind, EventKind::kExpunge);
  EXPECT_EQ(events[0].uid, 1u);
  EXPECT_EQ(events[1].kind, EventKind::kNew);
  EXPECT_EQ(events[1].uid, 3u);
  EXPECT_EQ(f.Find("Public.News")->modseq, 6u);
  // That was its first look although it started from the view's UIDVALIDITY
  // (the watch then tells the devices there that it covers the folder).
  EXPECT_TRUE(f.current_first_look());
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Mine\"");
  EXPECT_TRUE(f.current_first_look());
  f.Finish(true);
  EXPECT_EQ(asked, std::vector<std::string>{"Public.News"});
  // A later look is not.
  f.Queue("Public.News");
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Public.News\" (QRESYNC (9 6))");
  EXPECT_FALSE(f.current_first_look());
}

TEST(FolderCatchUpTest, CoveredFoldersAreBounded) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  std::vector<std::string> many;
  for (int i = 0; i < 150; ++i) many.push_back(absl::StrCat("Public.F", i));
  many.push_back("Public.Bad\n");  // not quotable: never named
  f.SetCovered(many);
  EXPECT_EQ(f.covered().size(), FolderCatchUp::kMaxCovered);
}

// A covered folder is tracked even when the user's own folders fill the cap:
// they are bounded by max_folders, covered ones by kMaxCovered.
TEST(FolderCatchUpTest, CoveredFoldersAreTrackedPastTheCapOfPersonalOnes) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f(2);
  f.set_namespaces(&namespaces);
  f.BeginBaseline();
  f.OnStatus(R("* STATUS A (UIDVALIDITY 1 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS B (UIDVALIDITY 2 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS C (UIDVALIDITY 3 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.EndBaseline(true);
  EXPECT_EQ(f.Find("C"), nullptr);  // the cap
  EXPECT_TRUE(f.SetCovered({"Public.News"}));
  ASSERT_NE(f.Find("Public.News"), nullptr);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Public.News\"");
}

// A covered-only watch (WatchScope::kCoveredOnly): no listing; the covered
// folders alone are tracked and looked at, the user's own never, whatever
// the store says of them; after a reconnect each covered folder is caught up
// from where it stood.
TEST(FolderCatchUpTest, CoveredOnlyTracksNothingButTheCoveredFolders) {
  const session::StoreNamespaces namespaces = PublicNamespace();
  FolderCatchUp f;
  f.set_namespaces(&namespaces);
  EXPECT_TRUE(f.SetCovered({"Public.News"}));
  EXPECT_FALSE(f.tracking());
  f.EnableCoveredOnly();
  EXPECT_TRUE(f.tracking());
  EXPECT_EQ(f.size(), 1u);
  EXPECT_TRUE(
      RunCatchUp(f, "EXAMINE \"Public.News\"",
                 {"* OK [UIDVALIDITY 9] Ok", "* OK [HIGHESTMODSEQ 4] Highest",
                  "* OK [UIDNEXT 3] Predicted next UID"})
          .empty());
  EXPECT_FALSE(f.queued());
  // The user's own folders: not tracked, whatever reports them.
  f.OnStatus(R("* STATUS Work (MESSAGES 2 UIDNEXT 3 HIGHESTMODSEQ 7)"));
  f.OnCreated("Play");
  f.OnRenamed("Old", "New");
  EXPECT_EQ(f.Find("Work"), nullptr);
  EXPECT_EQ(f.Find("Play"), nullptr);
  EXPECT_EQ(f.Find("New"), nullptr);
  EXPECT_FALSE(f.queued());
  // Another covered folder: queued for its first look at once.
  EXPECT_TRUE(f.SetCovered({"Public.News", "Public.Sport"}));
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Public.Sport\"");
  f.Abort();  // the link went away mid-look
  // The NOTIFY in force on a new link: each covered folder looked at again,
  // the known one from its MODSEQ.
  f.EnableCoveredOnly();
  std::vector<std::string> commands;
  while (f.queued()) {
    commands.push_back(f.StartNext());
    f.Finish(true);
  }
  std::sort(commands.begin(), commands.end());
  EXPECT_EQ(commands,
            (std::vector<std::string>{"EXAMINE \"Public.News\" (QRESYNC (9 4))",
                                      "EXAMINE \"Public.Sport\""}));
}

TEST(WatchNotifyCommandTest, CoveredOnlyNamesTheCoveredFoldersAlone) {
  EXPECT_EQ(CoveredOnlyNotifyCommand({}), "NOTIFY NONE");
  EXPECT_EQ(CoveredOnlyNotifyCommand({"Public.Foo", "Public.Bar"}),
            "NOTIFY SET (mailboxes (\"Public.Foo\" \"Public.Bar\") "
            "(MessageNew MessageExpunge FlagChange))");
}

TEST(WatchNotifyCommandTest, NamesCoveredFoldersByAMailboxesFilter) {
  EXPECT_EQ(WatchNotifyCommand({}),
            "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
            "(personal (MessageNew MessageExpunge FlagChange MailboxName))");
  EXPECT_EQ(WatchNotifyCommand({"Public.Foo", "shared/bob/A \"b\""}),
            "NOTIFY SET (selected (MessageNew MessageExpunge FlagChange)) "
            "(personal (MessageNew MessageExpunge FlagChange MailboxName)) "
            "(mailboxes (\"Public.Foo\" \"shared/bob/A \\\"b\\\"\") "
            "(MessageNew MessageExpunge FlagChange))");
}

TEST(FolderCatchUpTest, NotifyStatusQueuesOnceAndCatchUpReportsEvents) {
  FolderCatchUp f = Baselined();
  // Dovecot's NOTIFY STATUS for a non-selected mailbox: no UIDVALIDITY.
  f.OnStatus(
      R("* STATUS Work (MESSAGES 5 UIDNEXT 6 UNSEEN 2 HIGHESTMODSEQ 12)"));
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 13)"));
  EXPECT_EQ(f.queue_size(), 1u);  // duplicates merge
  std::vector<StoreEvent> events = RunCatchUp(
      f, "EXAMINE \"Work\" (QRESYNC (7 10))",
      {"* OK [CLOSED] Previous mailbox closed.", "* 4 EXISTS",
       "* OK [UIDVALIDITY 7] UIDs valid", "* OK [UIDNEXT 7] Predicted next UID",
       "* OK [HIGHESTMODSEQ 14] Highest",
       // 3 expunged (known), 6 came and went (never announced): not news.
       "* VANISHED (EARLIER) 3,6",
       "* 2 FETCH (UID 2 FLAGS (\\Seen) MODSEQ (11))",
       "* 4 FETCH (UID 5 FLAGS () MODSEQ (13))"});
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].kind, EventKind::kExpunge);
  EXPECT_EQ(events[0].uid, 3u);
  EXPECT_EQ(events[1].kind, EventKind::kFlags);
  EXPECT_EQ(events[1].uid, 2u);
  EXPECT_EQ(events[1].flags, std::vector<std::string>{"\\Seen"});
  EXPECT_EQ(events[2].kind, EventKind::kNew);  // UID 5 >= the last UIDNEXT
  EXPECT_EQ(events[2].uid, 5u);
  for (const StoreEvent& e : events) {
    EXPECT_EQ(e.folder, "Work");
    EXPECT_EQ(e.uidvalidity, 7u);
  }
  EXPECT_EQ(f.Find("Work")->modseq, 14u);
  EXPECT_EQ(f.Find("Work")->uidnext, 7u);
  EXPECT_TRUE(f.current().empty());
  EXPECT_FALSE(f.queued());
  // A late STATUS of what was caught up already starts nothing.
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 14)"));
  EXPECT_FALSE(f.queued());
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 15)"));
  EXPECT_TRUE(f.queued());
}

TEST(FolderCatchUpTest, ChangeDuringTheFirstListingIsQueued) {
  FolderCatchUp f;
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  // NOTIFY is on before the listing: a change after Work was listed.
  f.OnStatus(R("* STATUS Work (MESSAGES 5 UIDNEXT 6 HIGHESTMODSEQ 11)"));
  // And one of a folder the listing has not reached yet: taken by its listing.
  f.OnStatus(R("* STATUS Later (MESSAGES 1 UIDNEXT 2 HIGHESTMODSEQ 2)"));
  f.OnStatus(R("* STATUS Later (UIDVALIDITY 3 UIDNEXT 2 HIGHESTMODSEQ 2)"));
  f.EndBaseline(true);
  ASSERT_NE(f.Find("Later"), nullptr);
  EXPECT_EQ(f.Find("Later")->uidvalidity, 3u);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Work\" (QRESYNC (7 10))");
  f.Abort();
}

TEST(FolderCatchUpTest,
     SeveralFoldersQueuedInOrderAndAChangeWhileCatchingUpIsKept) {
  FolderCatchUp f = Baselined();
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 11)"));
  f.OnStatus(R("* STATUS Play (HIGHESTMODSEQ 4)"));
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Work\" (QRESYNC (7 10))");
  // Work changes again while its EXAMINE runs: queued, not dropped.
  f.Queue("Work");
  f.OnCode("UIDVALIDITY 7");
  f.OnCode("HIGHESTMODSEQ 11");
  f.OnCode("UIDNEXT 5");
  EXPECT_TRUE(f.Finish(true).empty());
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Play\" (QRESYNC (8 3))");
  f.Abort();  // link lost: Play waits again
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Work\" (QRESYNC (7 11))");
  f.Finish(false);  // gone meanwhile: no longer tracked
  EXPECT_EQ(f.Find("Work"), nullptr);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Play\" (QRESYNC (8 3))");
  EXPECT_EQ(f.StartNext(), "");
}

TEST(FolderCatchUpTest, NewUidvalidityRebaselinesWithoutEvents) {
  FolderCatchUp f = Baselined();
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 11)"));
  std::vector<StoreEvent> events =
      RunCatchUp(f, "EXAMINE \"Work\" (QRESYNC (7 10))",
                 {"* OK [UIDVALIDITY 99] UIDs valid",
                  "* OK [UIDNEXT 3] Predicted next UID",
                  "* OK [HIGHESTMODSEQ 4] Highest"});
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(f.Find("Work")->uidvalidity, 99u);
  EXPECT_EQ(f.Find("Work")->modseq, 4u);
  EXPECT_EQ(f.Find("Work")->uidnext, 3u);
}

TEST(FolderCatchUpTest, ReconnectBaselineCatchesUpFromTheOldModseq) {
  FolderCatchUp f = Baselined();
  f.BeginBaseline();
  // Work changed while the watch was away; Play did not; Gone was deleted.
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 6 HIGHESTMODSEQ 15)"));
  f.OnStatus(R("* STATUS Play (UIDVALIDITY 8 UIDNEXT 2 HIGHESTMODSEQ 3)"));
  f.OnStatus(R("* STATUS Fresh (UIDVALIDITY 9 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.EndBaseline(true);
  EXPECT_EQ(f.Find("Work")->modseq, 10u);  // not skipped to 15
  ASSERT_NE(f.Find("Fresh"), nullptr);
  EXPECT_EQ(f.queue_size(), 1u);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Work\" (QRESYNC (7 10))");
  f.Abort();

  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 6 HIGHESTMODSEQ 15)"));
  f.EndBaseline(true);  // Play and Fresh no longer listed: deleted
  EXPECT_EQ(f.Find("Play"), nullptr);
  EXPECT_EQ(f.Find("Fresh"), nullptr);
  EXPECT_EQ(f.size(), 1u);

  f.BeginBaseline();
  f.EndBaseline(false);  // no LIST-STATUS: nothing covered
  EXPECT_EQ(f.size(), 0u);
  f.OnStatus(R("* STATUS Work (HIGHESTMODSEQ 16)"));
  EXPECT_FALSE(f.queued());
}

std::string Changes(const std::vector<FolderCatchUp::FolderChange>& changes) {
  std::string out;
  for (const FolderCatchUp::FolderChange& c : changes) {
    const char* kind = c.kind == EventKind::kFolderCreated   ? "+"
                       : c.kind == EventKind::kFolderDeleted ? "-"
                                                             : "~";
    absl::StrAppend(&out, kind, c.name,
                    c.new_name.empty() ? "" : absl::StrCat(">", c.new_name),
                    " ");
  }
  return out;
}

// A listing after the first compares with the table: what the store's events
// left out (Dovecot coalesces a quick rename + create + delete into one event,
// or none; nothing at all while the watch is away) becomes folder changes.
TEST(FolderCatchUpTest, ListingAgainFindsCreatedDeletedAndRenamedFolders) {
  FolderCatchUp f;
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.OnStatus(R("* STATUS Play (UIDVALIDITY 8 UIDNEXT 2 HIGHESTMODSEQ 3)"));
  f.OnStatus(R("* STATUS Old (UIDVALIDITY 9 UIDNEXT 2 HIGHESTMODSEQ 4)"));
  // The first listing is where things start: no changes.
  EXPECT_EQ(Changes(f.EndBaseline(true)), "");

  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  // Play renamed (same UIDVALIDITY) and changed meanwhile; Old deleted; New
  // created; INBOX never counts.
  f.OnStatus(R("* STATUS Games (UIDVALIDITY 8 UIDNEXT 3 HIGHESTMODSEQ 6)"));
  f.OnStatus(R("* STATUS New (UIDVALIDITY 11 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS INBOX (UIDVALIDITY 1 UIDNEXT 9 HIGHESTMODSEQ 20)"));
  EXPECT_EQ(Changes(f.EndBaseline(true)), "-Old ~Play>Games +New ");
  EXPECT_EQ(f.Find("Play"), nullptr);
  EXPECT_EQ(f.Find("Old"), nullptr);
  ASSERT_NE(f.Find("New"), nullptr);
  // The renamed folder is caught up from where its old name stood.
  ASSERT_NE(f.Find("Games"), nullptr);
  EXPECT_EQ(f.Find("Games")->modseq, 3u);
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Games\" (QRESYNC (8 3))");
  f.Abort();

  // What an event already told is not told again.
  f.OnCreated("Told");
  f.OnRenamed("New", "Newer");
  f.BeginBaseline();
  f.OnStatus(R("* STATUS Work (UIDVALIDITY 7 UIDNEXT 5 HIGHESTMODSEQ 10)"));
  f.OnStatus(R("* STATUS Games (UIDVALIDITY 8 UIDNEXT 3 HIGHESTMODSEQ 6)"));
  f.OnStatus(R("* STATUS Newer (UIDVALIDITY 11 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS Told (UIDVALIDITY 12 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  EXPECT_EQ(Changes(f.EndBaseline(true)), "");
}

TEST(FolderCatchUpTest, FolderChangesReadAsTheStoresOwnEvents) {
  imap::Arg dot;
  dot.type = imap::Arg::Type::kQuoted;
  dot.value = ".";
  const std::vector<StoreEvent> events =
      FolderChangeEvents({{EventKind::kFolderCreated, "New", ""},
                          {EventKind::kFolderDeleted, "Old", ""},
                          {EventKind::kFolderRenamed, "Play", "Games \"x\""}},
                         dot);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].raw, "* LIST () \".\" \"New\"");
  EXPECT_EQ(events[1].raw, "* LIST (\\NonExistent) \".\" \"Old\"");
  EXPECT_EQ(events[2].raw,
            "* LIST () \".\" \"Games \\\"x\\\"\" (\"OLDNAME\" (\"Play\"))");
  EXPECT_EQ(events[2].folder, "Play");
  EXPECT_EQ(events[2].new_folder, "Games \"x\"");
}

TEST(FolderCatchUpTest, MailboxEventsTrackCreateRenameDelete) {
  FolderCatchUp f = Baselined();
  f.OnCreated("New");
  ASSERT_NE(f.Find("New"), nullptr);
  EXPECT_EQ(f.Find("New")->uidvalidity,
            0u);  // not covered before its first look
  // The first look takes the baseline (no QRESYNC, no events).
  std::vector<StoreEvent> events =
      RunCatchUp(f, "EXAMINE \"New\"",
                 {"* 0 EXISTS", "* OK [UIDVALIDITY 5] UIDs valid",
                  "* OK [UIDNEXT 1] x", "* OK [HIGHESTMODSEQ 1] Highest"});
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(f.Find("New")->uidvalidity, 5u);

  f.OnRenamed("Work", "Job");
  EXPECT_EQ(f.Find("Work"), nullptr);
  ASSERT_NE(f.Find("Job"), nullptr);
  EXPECT_EQ(f.Find("Job")->modseq, 10u);  // caught up from where Work stood
  EXPECT_EQ(f.StartNext(), "EXAMINE \"Job\" (QRESYNC (7 10))");
  f.Abort();

  f.OnDeleted("Job");
  EXPECT_EQ(f.Find("Job"), nullptr);
  EXPECT_EQ(f.StartNext(), "");  // its queue entry went with it
}

TEST(FolderCatchUpTest, CapBoundsTrackedFolders) {
  FolderCatchUp f(2);
  f.BeginBaseline();
  f.OnStatus(R("* STATUS A (UIDVALIDITY 1 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS B (UIDVALIDITY 2 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(R("* STATUS C (UIDVALIDITY 3 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.EndBaseline(true);
  EXPECT_EQ(f.size(), 2u);
  EXPECT_EQ(f.Find("C"), nullptr);
  f.OnStatus(R("* STATUS C (HIGHESTMODSEQ 2)"));  // past the cap: not covered
  f.OnCreated("D");
  EXPECT_EQ(f.size(), 2u);
  EXPECT_FALSE(f.queued());
}

TEST(FolderCatchUpTest, UnquotableNamesAreNotTracked) {
  FolderCatchUp f;
  f.BeginBaseline();
  f.OnStatus(
      R("* STATUS {3}\r\nA\tB (UIDVALIDITY 1 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.OnStatus(
      R("* STATUS \"A \\\"q\\\"\" (UIDVALIDITY 1 UIDNEXT 1 HIGHESTMODSEQ 1)"));
  f.EndBaseline(true);
  EXPECT_EQ(f.size(), 1u);
  f.Queue("A \"q\"");
  EXPECT_EQ(f.StartNext(), "EXAMINE \"A \\\"q\\\"\" (QRESYNC (1 1))");
}

StoreEvent Ev(EventKind kind, uint32_t uid) {
  StoreEvent e;
  e.kind = kind;
  e.folder = "INBOX";
  e.uid = uid;
  return e;
}

std::vector<std::pair<EventKind, uint32_t>> Kinds(
    const std::vector<StoreEvent>& events) {
  std::vector<std::pair<EventKind, uint32_t>> out;
  for (const StoreEvent& e : events) out.emplace_back(e.kind, e.uid);
  return out;
}

TEST(SessionOrderTest, ExpungesFirstAndWhatCameAndWentOnlyAsItsExpunge) {
  // UID order as a catch-up lists it; 9 was fetched, then vanished in it.
  std::vector<StoreEvent> events = {
      Ev(EventKind::kFlags, 4), Ev(EventKind::kNew, 9),
      Ev(EventKind::kFlags, 9), Ev(EventKind::kExpunge, 2),
      Ev(EventKind::kNew, 10),  Ev(EventKind::kExpunge, 9)};
  EXPECT_EQ(
      Kinds(SessionOrder(events)),
      (std::vector<std::pair<EventKind, uint32_t>>{{EventKind::kExpunge, 2},
                                                   {EventKind::kExpunge, 9},
                                                   {EventKind::kFlags, 4},
                                                   {EventKind::kNew, 10}}));
  EXPECT_TRUE(SessionOrder({}).empty());
}

TEST(TakeUnseenTest, OnlyUidsNoLookSawAndEachOnce) {
  uint32_t from = 10;
  EXPECT_EQ(TakeUnseen("3,8:11,14", &from, 100),
            (std::vector<uint32_t>{10, 11, 14}));
  EXPECT_EQ(from, 15u);
  // The store repeats earlier expunges: none of them again.
  EXPECT_TRUE(TakeUnseen("3,10:11,14", &from, 100).empty());
  EXPECT_EQ(from, 15u);
  // Bounded.
  EXPECT_EQ(TakeUnseen("20:4000000", &from, 3),
            (std::vector<uint32_t>{20, 21, 22}));
  EXPECT_EQ(from, 23u);
  // No mark yet (no baseline), or not a set: nothing.
  uint32_t none = 0;
  EXPECT_TRUE(TakeUnseen("1:5", &none, 100).empty());
  EXPECT_TRUE(TakeUnseen("x", &from, 100).empty());
  EXPECT_EQ(from, 23u);
}

TEST(FolderCatchUpTest, FetchDataParses) {
  FetchData d =
      ParseFetchData(R("* 3 FETCH (UID 17 FLAGS (\\Seen $Junk) MODSEQ (42))"));
  EXPECT_EQ(d.uid, 17u);
  EXPECT_EQ(d.flags, (std::vector<std::string>{"\\Seen", "$Junk"}));
  EXPECT_EQ(d.modseq, 42u);
  EXPECT_EQ(ParseFetchData(R("* 3 FETCH (FLAGS ())")).uid, 0u);
  // The watch's own \Recent is not a flag a device is told of.
  d = ParseFetchData(R("* 4 FETCH (UID 18 FLAGS (\\Seen \\Recent))"));
  EXPECT_EQ(d.flags, std::vector<std::string>{"\\Seen"});
  EXPECT_TRUE(d.has_flags);
}

}  // namespace
}  // namespace pimap::store
