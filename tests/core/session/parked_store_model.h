// Test models for ParkedMailbox: a store mailbox that produces the events and
// the resync answers Dovecot 2.3 gives (as captured from a real one), and a
// client that applies the untagged lines it is sent to its own MSN list, so a
// test can check that the client and the store agree message by message.
#ifndef PIMAP_TESTS_CORE_SESSION_PARKED_STORE_MODEL_H_
#define PIMAP_TESTS_CORE_SESSION_PARKED_STORE_MODEL_H_

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/imap/response.h"
#include "core/imap/sequence_set.h"
#include "core/session/event.h"
#include "core/session/parked_mailbox.h"
#include "core/session/uid_view.h"
#include "gtest/gtest.h"

namespace pimap::session::testing {

inline imap::Response Parse(absl::string_view line) {
  imap::ResponseAssembler a(imap::ParserLimits{}, 1 << 20);
  EXPECT_TRUE(a.AddLine(line, nullptr).ok()) << line;
  absl::StatusOr<imap::Response> r = a.Finish();
  EXPECT_TRUE(r.ok()) << line << ": " << r.status();
  return r.ok() ? *r : imap::Response{};
}

inline std::vector<imap::Response> ParseAll(
    const std::vector<std::string>& lines) {
  std::vector<imap::Response> out;
  for (const std::string& l : lines) out.push_back(Parse(l));
  return out;
}

// Lines of a rendered block, without CRLF.
inline std::vector<std::string> Lines(absl::string_view text) {
  std::vector<std::string> out;
  for (absl::string_view l : absl::StrSplit(text, "\r\n", absl::SkipEmpty())) {
    out.emplace_back(l);
  }
  return out;
}

// One mailbox of the store, with Dovecot's modseq bookkeeping.
class StoreModel {
 public:
  struct Msg {
    uint32_t uid;
    std::vector<std::string> flags;
    uint64_t modseq;
  };

  explicit StoreModel(std::string folder = "INBOX", uint32_t uidvalidity = 77)
      : folder_(std::move(folder)), uidvalidity_(uidvalidity) {}

  StoreEvent Append(std::vector<std::string> flags = {}) {
    Msg m{next_uid_++, std::move(flags), ++modseq_};
    msgs_.push_back(m);
    return Event(EventKind::kNew, m.uid, m.flags, m.modseq);
  }
  StoreEvent Expunge(uint32_t uid) {
    auto it = Find(uid);
    EXPECT_NE(it, msgs_.end()) << uid;
    msgs_.erase(it);
    expunged_at_[uid] = ++modseq_;
    return Event(EventKind::kExpunge, uid, {}, 0);
  }
  StoreEvent SetFlags(uint32_t uid, std::vector<std::string> flags) {
    auto it = Find(uid);
    EXPECT_NE(it, msgs_.end()) << uid;
    // A new keyword joins the mailbox's FLAGS, as a store does.
    for (const std::string& f : flags) {
      if (f[0] != '\\' &&
          std::find(mailbox_flags_.begin(), mailbox_flags_.end(), f) ==
              mailbox_flags_.end()) {
        mailbox_flags_.push_back(f);
      }
    }
    it->flags = std::move(flags);
    it->modseq = ++modseq_;
    return Event(EventKind::kFlags, uid, it->flags, it->modseq);
  }

  // What a client holds right after SELECT.
  ParkedClientState Client(bool condstore, bool qresync) const {
    ParkedClientState s;
    s.folder = folder_;
    s.uidvalidity = uidvalidity_;
    s.view = UidView::FromSortedUids(Uids());
    s.highest_modseq = modseq_;
    s.condstore = condstore;
    s.qresync = qresync;
    s.mailbox_flags = mailbox_flags_;
    s.permanent_flags = mailbox_flags_;
    s.permanent_flags.push_back("\\*");
    return s;
  }

  // "SELECT INBOX (QRESYNC (uv since))" as Dovecot answers it; `hidden` new
  // messages are announced by EXISTS only (they arrived after the changes
  // were listed).
  std::vector<std::string> QresyncSelect(uint64_t since,
                                         size_t hidden = 0) const {
    std::vector<std::string> out = Head();
    Ranges gone;
    for (const auto& [uid, at] : expunged_at_) {
      if (at > since) gone.emplace_back(uid, uid);
    }
    if (!gone.empty()) {
      out.push_back(
          absl::StrCat("* VANISHED (EARLIER) ", RangesToSequenceSet(gone)));
    }
    for (size_t i = 0; i + hidden < msgs_.size(); ++i) {
      const Msg& m = msgs_[i];
      if (m.modseq <= since) continue;
      out.push_back(absl::StrCat("* ", i + 1, " FETCH (UID ", m.uid, " FLAGS (",
                                 absl::StrJoin(m.flags, " "), ") MODSEQ (",
                                 m.modseq, "))"));
    }
    out.push_back("c6 OK [READ-WRITE] Select completed.");
    return out;
  }
  // "SELECT INBOX" then "UID FETCH 1:* (FLAGS)".
  std::vector<std::string> ListingSelect() const {
    std::vector<std::string> out = Head(/*modseq=*/false);
    out.push_back("c6 OK [READ-WRITE] Select completed.");
    for (size_t i = 0; i < msgs_.size(); ++i) {
      out.push_back(absl::StrCat("* ", i + 1, " FETCH (UID ", msgs_[i].uid,
                                 " FLAGS (", absl::StrJoin(msgs_[i].flags, " "),
                                 "))"));
    }
    out.push_back("c7 OK Fetch completed.");
    return out;
  }
  std::vector<std::string> Esearch() const {
    std::vector<std::string> out;
    const std::string set = UidView::FromSortedUids(Uids()).Serialize();
    out.push_back(absl::StrCat("* ESEARCH (TAG \"c8\") UID",
                               set.empty() ? "" : " ALL ", set));
    out.push_back("c8 OK Search completed.");
    return out;
  }

  std::vector<uint32_t> Uids() const {
    std::vector<uint32_t> uids;
    for (const Msg& m : msgs_) uids.push_back(m.uid);
    return uids;
  }
  const std::vector<Msg>& msgs() const { return msgs_; }
  uint64_t modseq() const { return modseq_; }
  uint32_t uidvalidity() const { return uidvalidity_; }
  const std::string& folder() const { return folder_; }

 private:
  using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

  std::vector<Msg>::iterator Find(uint32_t uid) {
    return std::find_if(msgs_.begin(), msgs_.end(),
                        [&](const Msg& m) { return m.uid == uid; });
  }
  StoreEvent Event(EventKind kind, uint32_t uid, std::vector<std::string> flags,
                   uint64_t modseq) const {
    StoreEvent e;
    e.kind = kind;
    e.folder = folder_;
    e.uidvalidity = uidvalidity_;
    e.uid = uid;
    e.flags = std::move(flags);
    e.modseq = modseq;
    return e;
  }
  std::vector<std::string> Head(bool modseq = true) const {
    std::vector<std::string> out;
    const std::string flags = absl::StrJoin(mailbox_flags_, " ");
    out.push_back(absl::StrCat("* FLAGS (", flags, ")"));
    out.push_back(absl::StrCat("* OK [PERMANENTFLAGS (", flags,
                               " \\*)] Flags permitted."));
    out.push_back(absl::StrCat("* ", msgs_.size(), " EXISTS"));
    out.push_back("* 0 RECENT");
    out.push_back(
        absl::StrCat("* OK [UIDVALIDITY ", uidvalidity_, "] UIDs valid"));
    out.push_back(
        absl::StrCat("* OK [UIDNEXT ", next_uid_, "] Predicted next UID"));
    if (modseq) {
      out.push_back(absl::StrCat("* OK [HIGHESTMODSEQ ", modseq_, "] Highest"));
    }
    return out;
  }

  std::string folder_;
  uint32_t uidvalidity_;
  uint32_t next_uid_ = 1;
  uint64_t modseq_ = 1;
  std::vector<Msg> msgs_;
  std::map<uint32_t, uint64_t> expunged_at_;
  std::vector<std::string> mailbox_flags_ = {"\\Answered", "\\Flagged",
                                             "\\Deleted", "\\Seen", "\\Draft"};
};

// A client's MSN list as the untagged lines it was sent leave it: UID 0 for a
// message announced by EXISTS whose UID it has not fetched yet.
class ClientModel {
 public:
  explicit ClientModel(std::vector<uint32_t> uids) : uids_(std::move(uids)) {}

  // Applies `text`; false (with a test failure) on a line that does not fit.
  void Apply(absl::string_view text) {
    for (const std::string& line : Lines(text)) ApplyLine(line);
  }
  // What a client does after EXISTS: FETCH the new messages' UIDs.
  void FetchNew(const std::vector<uint32_t>& store_uids) {
    ASSERT_EQ(uids_.size(), store_uids.size());
    for (size_t i = 0; i < uids_.size(); ++i) {
      if (uids_[i] == 0) uids_[i] = store_uids[i];
    }
  }
  const std::vector<uint32_t>& uids() const { return uids_; }
  const std::map<uint32_t, std::string>& flags() const { return flags_; }

 private:
  void ApplyLine(const std::string& line) {
    std::vector<std::string> w = absl::StrSplit(line, ' ');
    ASSERT_GE(w.size(), 3u) << line;
    ASSERT_EQ(w[0], "*") << line;
    uint32_t n = 0;
    if (w[1] == "VANISHED") {
      absl::StatusOr<imap::SequenceSet> set = imap::SequenceSet::Parse(w[2]);
      ASSERT_TRUE(set.ok()) << line;
      for (const imap::SeqRange& r : set->ranges()) {
        for (uint64_t uid = r.first; uid <= r.last; ++uid) {
          auto it = std::find(uids_.begin(), uids_.end(), uid);
          ASSERT_NE(it, uids_.end()) << "unknown UID vanished: " << line;
          uids_.erase(it);
        }
      }
      return;
    }
    if (w[1] == "OK" || w[1] == "FLAGS") return;
    ASSERT_TRUE(absl::SimpleAtoi(w[1], &n)) << line;
    if (w[2] == "EXISTS") {
      ASSERT_GE(n, uids_.size()) << "EXISTS may not shrink: " << line;
      uids_.resize(n, 0);
    } else if (w[2] == "EXPUNGE") {
      ASSERT_TRUE(n >= 1 && n <= uids_.size()) << line;
      uids_.erase(uids_.begin() + (n - 1));
    } else if (w[2] == "FETCH") {
      ASSERT_TRUE(n >= 1 && n <= uids_.size()) << line;
      const size_t uid_at = line.find("(UID ");
      if (uid_at != std::string::npos) {
        uint32_t uid = 0;
        ASSERT_TRUE(absl::SimpleAtoi(
            line.substr(uid_at + 5, line.find(' ', uid_at + 5) - uid_at - 5),
            &uid));
        if (uids_[n - 1] == 0) uids_[n - 1] = uid;
        ASSERT_EQ(uids_[n - 1], uid) << "MSN/UID mismatch: " << line;
      }
      const size_t flags_at = line.find("FLAGS (");
      ASSERT_NE(flags_at, std::string::npos) << line;
      flags_[uids_[n - 1]] =
          line.substr(flags_at + 7, line.find(')', flags_at) - flags_at - 7);
    } else {
      FAIL() << "unexpected line: " << line;
    }
  }

  std::vector<uint32_t> uids_;
  std::map<uint32_t, std::string> flags_;  // last FLAGS told, by UID
};

}  // namespace pimap::session::testing

#endif  // PIMAP_TESTS_CORE_SESSION_PARKED_STORE_MODEL_H_
