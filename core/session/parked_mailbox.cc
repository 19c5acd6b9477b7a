// ParkedMailbox while parked: construction, store events rendered with the
// client's MSNs, and the bounded memory of what was told (parked_mailbox.h).
// The unpark's resync is in parked_mailbox_resync.cc.
#include "core/session/parked_mailbox.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "core/imap/syntax.h"
#include "core/session/parked_mailbox_internal.h"

namespace pimap::session {
namespace {

bool IsInbox(absl::string_view name) {
  return absl::EqualsIgnoreCase(name, "INBOX");
}

}  // namespace

namespace parked_internal {

std::vector<std::string> ShownFlags(const std::vector<std::string>& flags) {
  std::vector<std::string> shown;
  shown.reserve(flags.size());
  for (const std::string& f : flags) {
    // \Recent belongs to a store session; the parked client has none. A flag
    // that is not an atom would break the client's parse (or inject a line).
    if (absl::EqualsIgnoreCase(f, "\\Recent") || !imap::IsFlag(f)) continue;
    shown.push_back(f);
  }
  return shown;
}

uint64_t FlagsHash(const std::vector<std::string>& flags) {
  std::vector<std::string> key = ShownFlags(flags);
  for (std::string& f : key) absl::AsciiStrToLower(&f);
  std::sort(key.begin(), key.end());
  key.erase(std::unique(key.begin(), key.end()), key.end());
  return std::hash<std::string>()(absl::StrJoin(key, " "));
}

bool HasFlag(const std::vector<std::string>& list, absl::string_view flag) {
  return std::any_of(list.begin(), list.end(), [&](const std::string& f) {
    return absl::EqualsIgnoreCase(f, flag);
  });
}

void AppendPermanentFlags(const std::vector<std::string>& flags,
                          std::string* out) {
  absl::StrAppend(out, "* OK [PERMANENTFLAGS (", absl::StrJoin(flags, " "),
                  ")] Flags permitted.\r\n");
}

}  // namespace parked_internal

using parked_internal::FlagsHash;
using parked_internal::HasFlag;
using parked_internal::kByeDeleted;
using parked_internal::kByeRenamed;
using parked_internal::kByeUidvalidity;
using parked_internal::ShownFlags;

absl::StatusOr<ParkedMailbox> ParkedMailbox::Create(ParkedClientState state) {
  if (state.folder.empty()) {
    return absl::InvalidArgumentError("parked mailbox without a folder");
  }
  if (state.uidvalidity == 0) {
    return absl::InvalidArgumentError("parked mailbox without UIDVALIDITY");
  }
  return ParkedMailbox(std::move(state));
}

ParkedMailbox::ParkedMailbox(ParkedClientState state)
    : folder_(std::move(state.folder)),
      uidvalidity_(state.uidvalidity),
      view_(std::move(state.view)),
      // RFC 7162 §3.2.3: enabling QRESYNC enables CONDSTORE.
      condstore_(state.condstore || state.qresync),
      qresync_(state.qresync),
      read_only_(state.read_only),
      delimiter_(state.delimiter),
      park_modseq_(state.highest_modseq),
      highest_modseq_(state.highest_modseq),
      hms_told_(state.highest_modseq),
      park_max_uid_(view_.max_uid()),
      uid_floor_(view_.max_uid()),
      report_messages_(state.report_messages),
      report_flags_(state.report_flags),
      mailbox_flags_(std::move(state.mailbox_flags)),
      permanent_flags_(std::move(state.permanent_flags)) {}

ParkedMailbox::ParkedMailbox(ParkedMailbox&&) = default;
ParkedMailbox& ParkedMailbox::operator=(ParkedMailbox&&) = default;
ParkedMailbox::~ParkedMailbox() = default;

size_t ParkedMailbox::MemoryBytes() const {
  size_t bytes = sizeof(*this) + view_.MemoryBytes() - sizeof(UidView) +
                 folder_.capacity() + bye_reason_.capacity() +
                 told_.capacity() * (sizeof(std::pair<uint32_t, Told>) + 1);
  for (const auto* list : {&mailbox_flags_, &permanent_flags_}) {
    bytes += list->capacity() * sizeof(std::string);
    for (const std::string& f : *list) bytes += f.capacity();
  }
  return bytes;
}

void ParkedMailbox::Disconnect(absl::string_view reason) {
  state_ = State::kDisconnect;
  bye_reason_ = std::string(reason);
  resync_.reset();
  told_ = {};
}

bool ParkedMailbox::IsSelected(absl::string_view name) const {
  // RFC 3501 §5.1: INBOX is case-insensitive, every other name is not.
  if (IsInbox(folder_)) return IsInbox(name);
  return name == folder_;
}

bool ParkedMailbox::IsUnder(absl::string_view parent) const {
  // RENAME takes the inferior names along (RFC 3501 §6.3.5).
  if (parent.empty() || folder_.size() <= parent.size()) return false;
  const absl::string_view head =
      absl::string_view(folder_).substr(0, parent.size());
  if (IsInbox(parent) ? !IsInbox(head) : head != parent) return false;
  const char next = folder_[parent.size()];
  return delimiter_ != 0 ? next == delimiter_ : (next == '/' || next == '.');
}

// ---- Events -----------------------------------------------------------------

std::string ParkedMailbox::Apply(const StoreEvent& e) {
  std::string out;
  if (state_ != State::kParked) return out;
  switch (e.kind) {
    case EventKind::kFolderCreated:
      // Nothing the client holds changes (NOTIFY also reports subscription
      // changes this way).
      return out;
    case EventKind::kFolderDeleted:
      if (IsSelected(e.folder)) Disconnect(kByeDeleted);
      return out;
    case EventKind::kFolderRenamed:
      if (IsSelected(e.folder) || IsUnder(e.folder)) Disconnect(kByeRenamed);
      return out;
    case EventKind::kNew:
    case EventKind::kFlags:
    case EventKind::kExpunge:
      break;
  }
  if (!IsSelected(e.folder)) return out;
  if (e.uidvalidity != 0 && e.uidvalidity != uidvalidity_) {
    // The client's UIDs name other messages now: a store closes such a
    // session too.
    Disconnect(kByeUidvalidity);
    return out;
  }
  if (e.uid == 0) return out;
  // What the client's NOTIFY leaves out is the resync's to tell: the view
  // stays as the client has it (a new or expunged message is then news at
  // the unpark) and a flag change makes the resync repeat every message's
  // flags, as no per-message flags are kept here.
  if (e.kind == EventKind::kFlags ? !report_flags_ : !report_messages_) {
    if (e.kind == EventKind::kFlags) flags_uncertain_ = true;
    return out;
  }
  highest_modseq_ = std::max(highest_modseq_, e.modseq);
  switch (e.kind) {
    case EventKind::kNew:
      // A store hands out UIDs in ascending order: anything not above the
      // highest known is a repeat (or the news of a message already gone).
      if (e.uid <= uid_floor_) return out;
      uid_floor_ = e.uid;
      view_.Insert(e.uid);
      absl::StrAppend(&out, "* ", view_.size(), " EXISTS\r\n");
      return out;
    case EventKind::kExpunge: {
      const std::optional<uint32_t> msn = view_.Erase(e.uid);
      if (!msn) return out;
      told_.erase(e.uid);
      if (qresync_) {
        absl::StrAppend(&out, "* VANISHED ", e.uid, "\r\n");
      } else {
        absl::StrAppend(&out, "* ", *msn, " EXPUNGE\r\n");
      }
      return out;
    }
    case EventKind::kFlags: {
      // A pushed change of unknown result carries no flags: never told as
      // it is (a parked client has no store link here to resolve it with).
      if (e.resolve) return out;
      const std::optional<uint32_t> msn = view_.MsnOf(e.uid);
      if (!msn) return out;
      const uint64_t hash = FlagsHash(e.flags);
      if (AlreadyTold(e.uid, e.modseq, hash)) return out;
      RenderFlags(*msn, e.uid, e.modseq, e.flags, &out);
      RememberTold(e.uid, e.modseq, hash);
      return out;
    }
    default:
      return out;
  }
}

// ---- Rendering --------------------------------------------------------------

void ParkedMailbox::RenderFlags(uint32_t msn, uint32_t uid, uint64_t modseq,
                                const std::vector<std::string>& flags,
                                std::string* out) {
  const std::vector<std::string> shown = ShownFlags(flags);
  AnnounceKeywords(shown, out);
  absl::StrAppend(out, "* ", msn, " FETCH (");
  if (condstore_) {
    // RFC 7162 §3.1: UID and MODSEQ in every FETCH once CONDSTORE is on; a
    // change whose MODSEQ the event source did not carry goes without one
    // rather than with a guessed (possibly too high) value.
    absl::StrAppend(out, "UID ", uid, " ");
    if (modseq != 0) absl::StrAppend(out, "MODSEQ (", modseq, ") ");
  }
  absl::StrAppend(out, "FLAGS (", absl::StrJoin(shown, " "), "))\r\n");
}

void ParkedMailbox::AnnounceKeywords(const std::vector<std::string>& flags,
                                     std::string* out) {
  // Unknown FLAGS: the client's list cannot be extended faithfully.
  if (mailbox_flags_.empty()) return;
  bool added = false;
  bool permanent_added = false;
  for (const std::string& f : flags) {
    // System flags are always listed; only keywords are news.
    if (f[0] == '\\' || HasFlag(mailbox_flags_, f)) continue;
    if (mailbox_flags_.size() >= kMaxKeywords) break;
    mailbox_flags_.push_back(f);
    added = true;
    // A keyword could only be created if PERMANENTFLAGS had "\*"; it goes
    // before it, as a store lists it.
    auto star =
        std::find(permanent_flags_.begin(), permanent_flags_.end(), "\\*");
    if (star != permanent_flags_.end() && !HasFlag(permanent_flags_, f)) {
      permanent_flags_.insert(star, f);
      permanent_added = true;
    }
  }
  if (!added) return;
  absl::StrAppend(out, "* FLAGS (", absl::StrJoin(mailbox_flags_, " "),
                  ")\r\n");
  if (permanent_added) {
    parked_internal::AppendPermanentFlags(permanent_flags_, out);
  }
}

bool ParkedMailbox::AlreadyTold(uint32_t uid, uint64_t modseq,
                                uint64_t flags_hash) const {
  auto it = told_.find(uid);
  if (it == told_.end()) return false;
  const Told& t = it->second;
  // The same change from a second source, or an older one arriving late.
  if (modseq != 0 && t.modseq != 0 && modseq <= t.modseq) return true;
  if (t.flags_hash != flags_hash) return false;
  // Same flags: only a CONDSTORE client learns something (a newer MODSEQ).
  return !condstore_ || modseq == 0 || modseq <= t.modseq;
}

void ParkedMailbox::RememberTold(uint32_t uid, uint64_t modseq,
                                 uint64_t flags_hash) {
  if (told_overflow_) return;
  if (told_.size() >= kMaxToldFlags && !told_.contains(uid)) {
    // A burst bigger than this: forget it all and let the resync repeat the
    // store's changes instead of growing with the burst.
    told_ = {};
    told_overflow_ = true;
    return;
  }
  told_[uid] = Told{modseq, flags_hash};
}

}  // namespace pimap::session
