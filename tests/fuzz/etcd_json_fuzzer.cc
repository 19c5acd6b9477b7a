// libFuzzer target: etcd's v3 gateway JSON (bindings/etcd/etcd_json), the
// answers of the cluster's coordination store. Invariants: every parser
// either accepts or refuses with a message (never a crash, never OK from
// ErrorStatus); what an accepted answer says is consistent (a keep-alive TTL
// and a grant's ID and TTL positive, a deleted count not negative, a txn that
// succeeded carries no current key); and bytes survive the wire: a range
// answer built from the input's bytes (base64) and int64s parses back to
// them, and every request body built from them is one JSON object.
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "bindings/etcd/etcd_json.h"
#include "rapidjson/document.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using pimap::etcd::KeyValue;

void CheckError(const absl::Status& s) {
  FUZZ_CHECK(!s.ok());
  FUZZ_CHECK(!s.message().empty());
}

template <typename T>
void CheckRefusal(const absl::StatusOr<T>& r) {
  if (!r.ok()) CheckError(r.status());
}

bool IsJsonObject(const std::string& body) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  return !doc.HasParseError() && doc.IsObject();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const uint64_t seed = pimap::fuzz::TakeSeed(&data, &size);
  const absl::string_view input(reinterpret_cast<const char*>(data), size);
  namespace etcd = pimap::etcd;

  // The input as an answer to every call.
  CheckError(etcd::ErrorStatus(static_cast<int>(seed % 600), input));
  const auto grant = etcd::ParseGrant(input);
  CheckRefusal(grant);
  if (grant.ok()) FUZZ_CHECK(grant->id != 0 && grant->ttl_s > 0);
  const auto ttl = etcd::ParseKeepAlive(input);
  CheckRefusal(ttl);
  if (ttl.ok()) FUZZ_CHECK(*ttl > 0);
  CheckRefusal(etcd::ParseRevision(input));
  CheckRefusal(etcd::ParseRange(input));
  const auto deleted = etcd::ParseDelete(input);
  CheckRefusal(deleted);
  if (deleted.ok()) FUZZ_CHECK(*deleted >= 0);
  const auto txn = etcd::ParseTxn(input);
  CheckRefusal(txn);
  if (txn.ok() && txn->succeeded) FUZZ_CHECK(!txn->current_exists);

  // The input's bytes as a key and a value, through the wire and back.
  const size_t cut = size == 0 ? 0 : seed % (size + 1);
  const std::string key(input.substr(0, cut));
  const std::string value(input.substr(cut));
  const int64_t revision = static_cast<int64_t>(seed);
  const int64_t lease = static_cast<int64_t>(seed * 0x9e3779b97f4a7c15ULL);
  const std::string answer = absl::StrCat(
      "{\"header\":{\"revision\":\"", revision, "\"},\"kvs\":[{\"key\":\"",
      absl::Base64Escape(key), "\",\"value\":\"", absl::Base64Escape(value),
      "\",\"create_revision\":\"", revision, "\",\"mod_revision\":\"", revision,
      "\",\"lease\":\"", lease, "\"}]}");
  const auto range = etcd::ParseRange(answer);
  FUZZ_CHECK(range.ok());
  FUZZ_CHECK(range->revision == revision);
  FUZZ_CHECK(range->kvs.size() == 1);
  const KeyValue& kv = range->kvs[0];
  FUZZ_CHECK(kv.key == key && kv.value == value);
  FUZZ_CHECK(kv.create_revision == revision && kv.mod_revision == revision);
  FUZZ_CHECK(kv.lease == lease);

  FUZZ_CHECK(IsJsonObject(etcd::PutBody(key, value, lease)));
  FUZZ_CHECK(IsJsonObject(etcd::RangeBody(key, value)));
  FUZZ_CHECK(IsJsonObject(etcd::DeleteBody(key, value)));
  FUZZ_CHECK(IsJsonObject(etcd::PutIfAbsentBody(key, value, lease)));
  FUZZ_CHECK(IsJsonObject(etcd::DeleteIfValueBody(key, value)));
  FUZZ_CHECK(IsJsonObject(etcd::GrantBody(revision)));
  FUZZ_CHECK(IsJsonObject(etcd::LeaseIdBody(lease)));
  return 0;
}
