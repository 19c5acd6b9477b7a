// SideCommands (side_commands.h): SELECT if needed, the command, the link
// back to the pool, the answer.
#include "core/session/side_commands.h"

#include <algorithm>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/session/store_text.h"

namespace pimap::session {

SideCommands::SideCommands(StoreLinkPool* pool, PooledLink* lent,
                           size_t max_response_bytes)
    : pool_(pool), lent_(lent), max_bytes_(max_response_bytes) {}

SideCommands::~SideCommands() {
  if (lent_ != nullptr) {
    // Gone with a command outstanding: its answer would reach the next
    // borrower, so the pool closes the link.
    pool_->Return(lent_, /*reusable=*/command_tag_.empty());
  }
}

void SideCommands::Run(const std::string& folder, absl::string_view command,
                       Untagged untagged, Done done) {
  folder_ = folder;
  untagged_ = std::move(untagged);
  done_ = std::move(done);
  lent_->link->SetClient(this);
  std::string out;
  if (lent_->selected_folder != folder || lent_->read_only) {
    select_tag_ = "~s1";
    absl::StrAppend(&out, select_tag_, " SELECT ", QuotedMailbox(folder),
                    "\r\n");
  }
  command_tag_ = "~s2";
  absl::StrAppend(&out, command_tag_, " ", command, "\r\n");
  lent_->link->Send(out);
}

void SideCommands::OnStoreBytes(absl::string_view bytes) {
  if (collected_.size() + bytes.size() > max_bytes_) {
    overflow_ = true;
    return;
  }
  collected_.append(bytes.data(), bytes.size());
}

void SideCommands::OnStoreResponseEnd(absl::string_view completed_tag) {
  std::string raw = std::exchange(collected_, std::string());
  if (std::exchange(overflow_, false)) {
    dropped_ = true;
    return;
  }
  if (completed_tag.empty()) {
    if (untagged_ && !raw.empty() && raw[0] == '*') untagged_(raw);
    return;
  }
  absl::string_view rest = raw;
  rest.remove_prefix(std::min(rest.size(), completed_tag.size() + 1));
  rest = absl::StripTrailingAsciiWhitespace(rest);
  const bool ok = absl::StartsWithIgnoreCase(rest, "OK");
  if (!select_tag_.empty() && completed_tag == select_tag_) {
    select_tag_.clear();
    select_ok_ = ok;
    select_rest_ = std::string(rest);
    // IMAP4rev1: a failed SELECT leaves no mailbox selected.
    lent_->selected_folder = ok ? folder_ : "";
    lent_->read_only = false;
    lent_->highest_modseq = 0;
    return;
  }
  if (completed_tag != command_tag_) return;
  command_tag_.clear();
  if (!select_ok_) {
    Finish(false, false, std::move(select_rest_));
    return;
  }
  Finish(ok, false, std::string(rest));
}

void SideCommands::OnStoreClosed(absl::Status) {
  if (lent_ != nullptr) {
    pool_->Lost(lent_);
    lent_ = nullptr;
  }
  Finish(false, true, "");
}

void SideCommands::Finish(bool ok, bool lost, std::string rest) {
  if (lent_ != nullptr) {
    pool_->Return(std::exchange(lent_, nullptr), /*reusable=*/true);
  }
  Done done = std::move(done_);
  const Result result{ok, lost, dropped_, rest};
  if (done) done(result);  // may free this: nothing after
}

}  // namespace pimap::session
