// ParkedMailbox at unpark: the resync commands for a store link, the store's
// answers collected by UID, and what the client missed rendered with its MSNs
// (parked_mailbox.h). Nothing of the parked state changes until the answers
// add up to the link's message count, so a failed or repeated round is safe.
#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "core/imap/sequence_set.h"
#include "core/session/parked_mailbox.h"
#include "core/session/parked_mailbox_internal.h"

namespace pimap::session {

using parked_internal::FlagsHash;
using parked_internal::HasFlag;
using parked_internal::kByeInconsistent;
using parked_internal::kByeUidvalidity;
using parked_internal::kByeUnsettled;

namespace {

using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

// A listing may hold at most this many UIDs more than the link's count (new
// mail announced after the list): more means a broken answer, which must not
// make the gateway insert billions of UIDs.
constexpr int64_t kListSlack = 4096;

uint64_t CountOf(const Ranges& ranges) {
  uint64_t n = 0;
  for (const auto& [first, last] : ranges) n += uint64_t{last} - first + 1;
  return n;
}

// UIDs in `a` and not in `b`; both ascending, disjoint.
Ranges Minus(const Ranges& a, const Ranges& b) {
  Ranges out;
  size_t j = 0;
  for (const auto& [first, last] : a) {
    uint64_t cur = first;
    while (j < b.size() && b[j].second < cur) ++j;
    for (size_t k = j; cur <= last; ++k) {
      if (k >= b.size() || b[k].first > last) {
        out.emplace_back(static_cast<uint32_t>(cur), last);
        break;
      }
      if (b[k].first > cur) {
        out.emplace_back(static_cast<uint32_t>(cur), b[k].first - 1);
      }
      cur = uint64_t{b[k].second} + 1;
    }
  }
  return out;
}

// Ascending, disjoint, non-adjacent union.
Ranges Union(Ranges a, const Ranges& b) {
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  Ranges out;
  for (const auto& r : a) {
    if (!out.empty() && uint64_t{r.first} <= uint64_t{out.back().second} + 1) {
      out.back().second = std::max(out.back().second, r.second);
    } else {
      out.push_back(r);
    }
  }
  return out;
}

// The mailbox name for a command line: quoted, or a non-synchronising literal
// (LITERAL+) when it cannot be quoted, so the link never waits for "+".
std::string MailboxArg(absl::string_view name) {
  bool quotable = name.size() <= 1024;
  for (unsigned char c : name) {
    if (c == '\r' || c == '\n' || c == 0 || c >= 0x80) quotable = false;
  }
  if (!quotable) return absl::StrCat("{", name.size(), "+}\r\n", name);
  std::string out = "\"";
  for (char c : name) {
    if (c == '"' || c == '\\') out.push_back('\\');
    out.push_back(c);
  }
  out.push_back('"');
  return out;
}

// "NAME n" in a resp-text-code.
bool CodeNumber(absl::string_view code, absl::string_view name, uint64_t* n) {
  if (!absl::StartsWithIgnoreCase(code, name) || code.size() <= name.size() ||
      code[name.size()] != ' ') {
    return false;
  }
  return absl::SimpleAtoi(code.substr(name.size() + 1), n);
}

std::vector<std::string> FlagList(const imap::Arg& list) {
  std::vector<std::string> flags;
  for (const imap::Arg& f : list.children) flags.push_back(f.value);
  return flags;
}

bool SameFlagSet(const std::vector<std::string>& a,
                 const std::vector<std::string>& b) {
  if (a.size() != b.size()) return false;
  for (const std::string& f : a) {
    if (!HasFlag(b, f)) return false;
  }
  return true;
}

struct FetchData {
  uint32_t uid = 0;
  uint64_t modseq = 0;
  std::optional<std::vector<std::string>> flags;
};

FetchData ParseFetch(const imap::Response& r) {
  FetchData data;
  if (r.args.empty() || r.args[0].type != imap::Arg::Type::kList) return data;
  const std::vector<imap::Arg>& items = r.args[0].children;
  for (size_t i = 0; i + 1 < items.size(); i += 2) {
    const imap::Arg& value = items[i + 1];
    if (absl::EqualsIgnoreCase(items[i].value, "UID")) {
      if (!absl::SimpleAtoi(value.value, &data.uid)) data.uid = 0;
    } else if (absl::EqualsIgnoreCase(items[i].value, "FLAGS") &&
               value.type == imap::Arg::Type::kList) {
      data.flags = FlagList(value);
    } else if (absl::EqualsIgnoreCase(items[i].value, "MODSEQ") &&
               value.type == imap::Arg::Type::kList &&
               !value.children.empty()) {
      if (!absl::SimpleAtoi(value.children[0].value, &data.modseq)) {
        data.modseq = 0;
      }
    }
  }
  return data;
}

}  // namespace

ResyncPlan ParkedMailbox::BeginResync(const ResyncLink& link) {
  ResyncPlan plan;
  if (state_ != State::kParked && state_ != State::kResyncing &&
      state_ != State::kNeedUidList) {
    return plan;
  }
  // Starting over (a new link after a lost one) is safe: nothing changed yet.
  resync_ = std::make_unique<Resync>();
  resync_->esearch = link.esearch;
  state_ = State::kResyncing;
  const std::string open =
      absl::StrCat(read_only_ ? "EXAMINE " : "SELECT ", MailboxArg(folder_));
  if (link.qresync_enabled && park_modseq_ != 0) {
    // Changes since the parked HIGHESTMODSEQ, not since the last event: the
    // events may have had gaps, the store's answer has none.
    resync_->qresync = true;
    plan.qresync = true;
    std::string select =
        absl::StrCat(open, " (QRESYNC (", uidvalidity_, " ", park_modseq_);
    // Known UIDs bound the VANISHED (EARLIER) a store without the expunge
    // history sends.
    if (uid_floor_ != 0) absl::StrAppend(&select, " 1:", uid_floor_);
    select.append("))");
    plan.commands.push_back(std::move(select));
  } else {
    // UID FETCH, not FETCH 1:*: an empty mailbox makes "1:*" a BAD.
    resync_->listing = true;
    resync_->list_command = "UID FETCH 1:* (FLAGS)";
    plan.commands.push_back(open);
    plan.commands.push_back(resync_->list_command);
  }
  return plan;
}

std::string ParkedMailbox::uid_list_command() const {
  return resync_ == nullptr ? std::string() : resync_->list_command;
}

void ParkedMailbox::OnResyncResponse(const imap::Response& r) {
  if (resync_ == nullptr) return;
  Resync& rs = *resync_;
  switch (r.kind) {
    case imap::Response::Kind::kContinuation:
      return;
    case imap::Response::Kind::kTagged:
      if (r.name == "NO" || r.name == "BAD") {
        rs.failed = true;
        rs.fail_reason = absl::StrCat("Selected mailbox cannot be reopened: ",
                                      r.text.empty() ? r.name : r.text);
      }
      return;
    case imap::Response::Kind::kUntagged:
      break;
  }
  if (r.is_status()) {
    OnResyncStatus(r);
    return;
  }
  if (r.number.has_value()) {
    if (r.name == "EXISTS") {
      rs.has_count = true;
      rs.link_count = *r.number;
    } else if (r.name == "EXPUNGE") {
      // By the link's MSN, which names no UID until a fresh list says which.
      --rs.link_count;
      rs.list_stale = true;
    } else if (r.name == "FETCH") {
      OnResyncFetch(r);
    }
    return;
  }
  if (r.name == "FLAGS" && !r.args.empty() &&
      r.args[0].type == imap::Arg::Type::kList) {
    rs.got_flags = true;
    rs.mailbox_flags = FlagList(r.args[0]);
  } else if (r.name == "VANISHED" && !r.args.empty()) {
    const bool earlier =
        r.args[0].type == imap::Arg::Type::kList &&
        !r.args[0].children.empty() &&
        absl::EqualsIgnoreCase(r.args[0].children[0].value, "EARLIER");
    absl::StatusOr<imap::SequenceSet> set =
        imap::SequenceSet::Parse(r.args.back().value);
    if (!set.ok()) return;
    for (const auto& [first, last] : view_.Resolve(*set, /*uid_mode=*/true)) {
      for (uint64_t uid = first; uid <= last; ++uid) {
        rs.vanished.Insert(static_cast<uint32_t>(uid));
      }
    }
    if (earlier) return;
    // Expunged now, on the link (RFC 7162 §3.2.10: each UID was there).
    for (const imap::SeqRange& range : set->ranges()) {
      rs.link_count -= static_cast<int64_t>(range.last - range.first) + 1;
    }
    for (UidView* other : {&rs.fresh, &rs.listed}) {
      for (const auto& [first, last] : other->Resolve(*set, true)) {
        for (uint64_t uid = first; uid <= last; ++uid) {
          other->Erase(static_cast<uint32_t>(uid));
        }
      }
    }
  } else if (r.name == "SEARCH" || r.name == "ESEARCH") {
    rs.got_list = true;  // an ESEARCH without ALL: an empty mailbox
    if (!AddListedUids(r, rs.link_count + kListSlack, &rs.listed)) {
      rs.list_stale = true;
    }
  }
}

bool AddListedUids(const imap::Response& r, int64_t max_uids, UidView* uids) {
  if (r.name == "SEARCH") {
    for (const imap::Arg& a : r.args) {
      uint32_t uid = 0;
      if (a.type != imap::Arg::Type::kAtom || !absl::SimpleAtoi(a.value, &uid))
        continue;
      if (static_cast<int64_t>(uids->size()) > max_uids) return false;
      uids->Insert(uid);
    }
    return true;
  }
  for (size_t i = 0; i + 1 < r.args.size(); ++i) {
    if (!absl::EqualsIgnoreCase(r.args[i].value, "ALL")) continue;
    absl::StatusOr<imap::SequenceSet> set =
        imap::SequenceSet::Parse(r.args[i + 1].value);
    if (!set.ok() || set->is_saved_result()) return false;
    for (const imap::SeqRange& range : set->ranges()) {
      if (range.last == imap::kStar ||
          static_cast<int64_t>(uids->size()) +
                  (int64_t{range.last} - range.first) >
              max_uids) {
        return false;
      }
      for (uint64_t uid = range.first; uid <= range.last; ++uid) {
        uids->Insert(static_cast<uint32_t>(uid));
      }
    }
  }
  return true;
}

void ParkedMailbox::OnResyncStatus(const imap::Response& r) {
  Resync& rs = *resync_;
  if (r.name != "OK" || r.code.empty()) return;
  absl::string_view code = r.code;
  uint64_t n = 0;
  if (absl::EqualsIgnoreCase(code, "CLOSED")) {
    rs.ForgetMailbox();
  } else if (CodeNumber(code, "UIDVALIDITY", &n)) {
    rs.uidvalidity = static_cast<uint32_t>(n);
  } else if (CodeNumber(code, "HIGHESTMODSEQ", &n)) {
    rs.highest_modseq = n;
  } else if (absl::StartsWithIgnoreCase(code, "PERMANENTFLAGS ")) {
    code.remove_prefix(15);
    absl::ConsumePrefix(&code, "(");
    absl::ConsumeSuffix(&code, ")");
    rs.got_permanent = true;
    rs.permanent_flags = std::vector<std::string>(
        absl::StrSplit(code, ' ', absl::SkipWhitespace()));
    rs.permanent_text = r.text;
  }
}

void ParkedMailbox::OnResyncFetch(const imap::Response& r) {
  Resync& rs = *resync_;
  const FetchData data = ParseFetch(r);
  if (data.uid == 0) {
    // A flag change by the link's MSN only (a link without QRESYNC): which
    // message is unknown, so list again, with every message's flags.
    rs.list_stale = true;
    rs.flags_by_msn = true;
    return;
  }
  if (rs.listing) {
    if (static_cast<int64_t>(rs.listed.size()) > rs.link_count + kListSlack) {
      rs.list_stale = true;
      return;
    }
    rs.listed.Insert(data.uid);
    rs.got_list = true;
  }
  if (view_.Contains(data.uid)) {
    if (!data.flags.has_value()) return;
    // A listing carries every message's flags; keep those that may be news.
    if (rs.listing && !flags_uncertain_ && !rs.flags_by_msn &&
        !told_overflow_ && !told_.contains(data.uid)) {
      return;
    }
    rs.changes[data.uid] = Resync::Change{data.modseq, *data.flags};
  } else if (data.uid > uid_floor_) {
    if (!rs.listing) rs.fresh.Insert(data.uid);
  } else if (!rs.listing) {
    // Not in the client's view and not above its newest UID: a message the
    // events skipped, which no EXISTS can put back in the middle.
    rs.inexpressible = true;
  }
}

ParkedMailbox::State ParkedMailbox::Fail(absl::string_view reason) {
  Disconnect(reason);
  return state_;
}

ParkedMailbox::State ParkedMailbox::FinishResync(std::string* out) {
  if (state_ != State::kResyncing && state_ != State::kNeedUidList) {
    return state_;
  }
  Resync& rs = *resync_;
  if (rs.failed) return Fail(rs.fail_reason);
  // A SELECT always says its UIDVALIDITY.
  if (rs.uidvalidity == 0) return Fail(kByeInconsistent);
  if (rs.uidvalidity != uidvalidity_) return Fail(kByeUidvalidity);
  if (rs.inexpressible) return Fail(kByeInconsistent);

  const Ranges view_ranges = view_.Ranges();
  Ranges expunged = rs.vanished.Ranges();
  Ranges fresh = rs.fresh.Ranges();
  // A listing round lists by FETCH, which says nothing for an empty mailbox:
  // its completion is the list.
  const bool have_list = (rs.got_list || rs.listing) && !rs.list_stale;
  if (have_list) {
    const Ranges listed = rs.listed.Ranges();
    expunged = Union(std::move(expunged), Minus(view_ranges, listed));
    fresh = Minus(listed, view_ranges);
    if (!fresh.empty() && fresh.front().first <= uid_floor_) {
      return Fail(kByeInconsistent);
    }
  }
  const int64_t predicted = static_cast<int64_t>(view_.size()) -
                            static_cast<int64_t>(CountOf(expunged)) +
                            static_cast<int64_t>(CountOf(fresh));
  if (rs.list_stale || !rs.has_count || predicted != rs.link_count) {
    // New mail announced by EXISTS alone, an expunge by MSN, a store without
    // the expunge history: only the whole UID list settles it.
    if (rs.rounds >= kMaxUidListRounds) return Fail(kByeUnsettled);
    if (!rs.qresync || flags_uncertain_ || rs.flags_by_msn) {
      rs.StartListRound("UID FETCH 1:* (FLAGS)");
    } else {
      rs.StartListRound(rs.esearch ? "UID SEARCH RETURN (ALL) ALL"
                                   : "UID SEARCH ALL");
    }
    state_ = State::kNeedUidList;
    return state_;
  }
  RenderResync(expunged, fresh, out);
  state_ = State::kSynced;
  resync_.reset();
  told_ = {};
  return state_;
}

void ParkedMailbox::RenderResync(const Ranges& expunged, const Ranges& fresh,
                                 std::string* out) {
  Resync& rs = *resync_;
  // The order a store syncs in: FLAGS first (a FETCH may use a new keyword),
  // expunges, flag changes, EXISTS, then HIGHESTMODSEQ (Dovecot 2.3).
  if (rs.got_flags && !mailbox_flags_.empty() &&
      !SameFlagSet(rs.mailbox_flags, mailbox_flags_)) {
    mailbox_flags_ = rs.mailbox_flags;
    absl::StrAppend(out, "* FLAGS (", absl::StrJoin(mailbox_flags_, " "),
                    ")\r\n");
  }
  if (rs.got_permanent && !permanent_flags_.empty() &&
      !SameFlagSet(rs.permanent_flags, permanent_flags_)) {
    permanent_flags_ = rs.permanent_flags;
    absl::StrAppend(
        out, "* OK [PERMANENTFLAGS (", absl::StrJoin(permanent_flags_, " "),
        ")] ",
        rs.permanent_text.empty() ? "Flags permitted." : rs.permanent_text,
        "\r\n");
  }

  if (qresync_ && !expunged.empty()) {
    absl::StrAppend(out, "* VANISHED ", RangesToSequenceSet(expunged), "\r\n");
  }
  for (const auto& [first, last] : expunged) {
    for (uint64_t uid = first; uid <= last; ++uid) {
      // Ascending: each MSN is the one the client holds after the previous.
      const std::optional<uint32_t> msn =
          view_.Erase(static_cast<uint32_t>(uid));
      told_.erase(static_cast<uint32_t>(uid));
      if (!qresync_ && msn) absl::StrAppend(out, "* ", *msn, " EXPUNGE\r\n");
    }
  }

  for (const auto& [uid, change] : rs.changes) {
    const std::optional<uint32_t> msn = view_.MsnOf(uid);
    if (!msn) continue;  // expunged after all
    const uint64_t hash = FlagsHash(change.flags);
    if (uid > park_max_uid_ && !told_overflow_) {
      // New while parked: the client has only its EXISTS and fetches the
      // rest itself, unless it was told flags that are now stale.
      auto it = told_.find(uid);
      if (it == told_.end() || it->second.flags_hash == hash) continue;
    }
    if (AlreadyTold(uid, change.modseq, hash)) continue;
    RenderFlags(*msn, uid, change.modseq, change.flags, out);
  }

  if (!fresh.empty()) {
    for (const auto& [first, last] : fresh) {
      for (uint64_t uid = first; uid <= last; ++uid) {
        view_.Insert(static_cast<uint32_t>(uid));
      }
    }
    uid_floor_ = std::max(uid_floor_, fresh.back().second);
    absl::StrAppend(out, "* ", view_.size(), " EXISTS\r\n");
  }

  highest_modseq_ = std::max(highest_modseq_, rs.highest_modseq);
  // The checkpoint Dovecot gives a QRESYNC client after expunges and new
  // mail, held back while parked (events may have gaps) and given now: a
  // QRESYNC answer covers every change since the parked MODSEQ.
  if (qresync_ && rs.qresync && rs.highest_modseq > hms_told_) {
    hms_told_ = rs.highest_modseq;
    absl::StrAppend(out, "* OK [HIGHESTMODSEQ ", rs.highest_modseq,
                    "] Highest\r\n");
  }
}

ParkedMailbox::State ParkedMailbox::Reconcile(
    const std::vector<imap::Response>& responses, std::string* out) {
  for (const imap::Response& r : responses) OnResyncResponse(r);
  return FinishResync(out);
}

}  // namespace pimap::session
