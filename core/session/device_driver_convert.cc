// XCONVERT / XUIDCONVERT / UID XCONVERT in a P-IMAP session (xconvert.h):
// the part's MIME header and octets fetched from the store (one UID FETCH,
// bounded), its transfer encoding removed, then converted by the shard's
// Transcoder — inline for the built-in conversions, on the transcoder's
// worker thread for an external converter, whose result comes back through
// the shard's inbox. The store link stays with the command meanwhile, so the
// device's next command waits for the answer, as IMAP orders it.
#include <atomic>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "core/base/log.h"
#include "core/convert/mime_part.h"
#include "core/convert/transcoder.h"
#include "core/convert/transfer_encoding.h"
#include "core/imap/writer.h"
#include "core/session/device_driver.h"
#include "core/session/xconvert.h"

namespace pimap::session {
namespace {

// Tells a converter's late result from the command it belonged to (one
// counter for every driver of the process: ids never repeat).
std::atomic<uint64_t> next_convert_id{0};

// RFC 5259 §9's codes for why a conversion cannot be done, by status.
absl::string_view CodeFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kNotFound:
    case absl::StatusCode::kInvalidArgument:
      return "BADPARAMETERS";
    case absl::StatusCode::kResourceExhausted:
      return "LIMIT";
    default:
      return "CANNOT";
  }
}

}  // namespace

void DeviceDriver::StartConvert(const imap::Command& command, size_t from,
                                bool uid) {
  const std::string& tag = command.tag;
  std::string out;
  if (session_->selected_folder.empty()) {
    WriteBad(tag, absl::StrCat(command.name, " needs a selected mailbox"));
    return;
  }
  absl::StatusOr<XConvertRequest> request =
      ParseXConvert(command.args, from, uid);
  if (!request.ok()) {
    WriteBad(tag, absl::StrCat(uid && from == 1 ? "UID XCONVERT" : command.name,
                               " ", request.status().message()));
    return;
  }
  request->name = from == 1 ? "UID XCONVERT" : command.name;
  if (services_.transcoder == nullptr) {
    imap::AppendTaggedStatus(&out, tag, "NO", "CANNOT",
                             "Conversion is not available");
    Write(std::move(out));
    return;
  }
  const UidView& view = session_->view;
  if (uid) {
    if (!view.Contains(request->number)) {
      // RFC 3501 §6.4.8: a UID that is not there is no error for FETCH; for
      // a conversion of one message there is nothing to convert.
      imap::AppendTaggedStatus(&out, tag, "NO", "NONEXISTENT",
                               "No such message");
      Write(std::move(out));
      return;
    }
    request->target_uid = request->number;
  } else {
    std::optional<uint32_t> at = view.UidAt(request->number);
    if (!at.has_value()) {
      WriteBad(tag, "Invalid message sequence number");
      return;
    }
    request->target_uid = *at;
  }
  request->id = ++next_convert_id;
  const std::string fetch = XConvertFetchCommand(
      *request, services_.transcoder->config().max_input_bytes);
  cmd().convert = std::move(*request);
  SendJob(Job::kConvert, tag, fetch);
}

void DeviceDriver::OnConvertFetched(bool ok, absl::string_view rest) {
  if (!cmd().convert.has_value()) {
    FinishCommand(rest);
    return;
  }
  XConvertRequest& request = *cmd().convert;
  auto fail = [&](absl::string_view code, absl::string_view why) {
    cmd().convert.reset();
    FinishCommand(absl::StrCat("NO [", code, "] ", why));
  };
  if (!ok) {
    // The store's own NO (the message went meanwhile, say), without its tag.
    std::string said(rest.substr(std::min(rest.size(), rest.find(' ') + 1)));
    return fail("CANNOT", said.empty() ? "The message store refused" : said);
  }
  FetchedPart part = ParseXConvertFetch(request.fetch, request.section);
  request.fetch.clear();
  if (!part.has_body) return fail("NONEXISTENT", "No such body part");
  const size_t max_input = services_.transcoder->config().max_input_bytes;
  if (part.body.size() > max_input) {
    return fail("LIMIT", absl::StrCat("The body part exceeds ", max_input,
                                      " bytes, too large to convert"));
  }
  const convert::PartType type = convert::ParsePartHeader(part.mime_header);
  if (type.type == "multipart" || type.type == "message") {
    return fail("BADPARAMETERS", absl::StrCat("Cannot convert ", type.media(),
                                              ": name one of its parts"));
  }
  absl::StatusOr<std::string> decoded =
      convert::DecodeTransferEncoding(type.transfer_encoding, part.body);
  if (!decoded.ok()) return fail("CANNOT", decoded.status().message());
  part.body.clear();
  PIMAP_LOG(DEBUG).Conn(client_)
      << "xconvert uid " << request.target_uid << " [" << request.section
      << "] " << type.media() << " -> " << request.to << ", " << decoded->size()
      << " bytes";
  const uint64_t id = request.id;
  const std::string to = request.to;
  std::weak_ptr<bool> alive = alive_;
  services_.transcoder->Convert(
      type, to, std::move(*decoded),
      [this, alive, id](absl::StatusOr<std::string> result) {
        // Inline (built in) or from the shard's inbox (external): the
        // driver may be gone by then.
        if (alive.expired()) return;
        Busy busy(this);
        OnConverted(id, std::move(result));
      });
}

void DeviceDriver::OnConverted(uint64_t id,
                               absl::StatusOr<std::string> result) {
  // A command aborted meanwhile (its link lost) took its request with it.
  if (job_ != Job::kConvert || cmd_ == nullptr || !cmd_->convert.has_value() ||
      cmd_->convert->id != id) {
    return;
  }
  XConvertRequest request = std::move(*cmd().convert);
  cmd().convert.reset();
  if (!result.ok()) {
    PIMAP_LOG(INFO).Conn(client_).User(user_).Device(device_).Event(
        "xconvert.failed")
        << "to " << request.to << ": " << result.status().message();
    FinishCommand(absl::StrCat("NO [", CodeFor(result.status()), "] ",
                               result.status().message()));
    return;
  }
  // The answer goes out in one write: past the device's output bound the
  // binding would take the device for one that stopped reading and close it.
  if (result->size() + 64 > services_.max_output_bytes) {
    FinishCommand(absl::StrCat("NO [LIMIT] The converted part (",
                               result->size(),
                               " bytes) exceeds the output bound of ",
                               services_.max_output_bytes, " bytes"));
    return;
  }
  // The MSN now (no EXPUNGE reaches the device while the command runs).
  uint32_t msn = request.uid ? 0 : request.number;
  if (std::optional<uint32_t> now =
          session_ != nullptr ? session_->view.MsnOf(request.target_uid)
                              : std::nullopt) {
    msn = *now;
  }
  // Literal8 for anything that is not text, or that holds a NUL (RFC 3516):
  // the device then knows not to treat it as text.
  const bool binary = !absl::StartsWith(request.to, "text/") ||
                      result->find('\0') != std::string::npos;
  Write(RenderXConvert(msn, *result, binary));
  FinishCommand(absl::StrCat("OK ", request.name, " completed"));
}

}  // namespace pimap::session
