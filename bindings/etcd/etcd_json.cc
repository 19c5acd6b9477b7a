// etcd's gateway JSON (etcd_json.h): bodies built by concatenation (base64
// and decimal digits need no JSON escaping), answers parsed with RapidJSON.
#include "bindings/etcd/etcd_json.h"

#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "rapidjson/document.h"
#include "rapidjson/error/en.h"

namespace pimap::etcd {
namespace {

using rapidjson::Value;

absl::Status Malformed(absl::string_view why) {
  return absl::InvalidArgumentError(
      absl::StrCat("etcd: malformed answer: ", why));
}

std::string B64(absl::string_view bytes) { return absl::Base64Escape(bytes); }

// "key":"<b64>" and, when range_end is set, ,"range_end":"<b64>".
std::string KeyFields(absl::string_view key, absl::string_view range_end) {
  std::string out = absl::StrCat("\"key\":\"", B64(key), "\"");
  if (!range_end.empty()) {
    absl::StrAppend(&out, ",\"range_end\":\"", B64(range_end), "\"");
  }
  return out;
}

std::string PutFields(absl::string_view key, absl::string_view value,
                      int64_t lease) {
  std::string out =
      absl::StrCat(KeyFields(key, ""), ",\"value\":\"", B64(value), "\"");
  if (lease != 0) absl::StrAppend(&out, ",\"lease\":\"", lease, "\"");
  return out;
}

// Parses a whole body into `doc`: bounded, iterative (a deeply nested body
// cannot exhaust the shard's stack), UTF-8 validated, one object.
absl::Status ParseDocument(absl::string_view body, rapidjson::Document* doc) {
  if (body.size() > kMaxResponseBytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("etcd: answer larger than ", kMaxResponseBytes, " bytes"));
  }
  doc->Parse<rapidjson::kParseIterativeFlag |
             rapidjson::kParseValidateEncodingFlag>(body.data(), body.size());
  if (doc->HasParseError()) {
    return Malformed(
        absl::StrCat("JSON error at offset ", doc->GetErrorOffset(), ": ",
                     rapidjson::GetParseError_En(doc->GetParseError())));
  }
  if (!doc->IsObject()) return Malformed("not a JSON object");
  return absl::OkStatus();
}

absl::StatusCode CodeOf(int64_t grpc_code) {
  // absl::StatusCode numbers its codes as gRPC does (1..16).
  if (grpc_code < 1 || grpc_code > 16) return absl::StatusCode::kUnknown;
  return static_cast<absl::StatusCode>(grpc_code);
}

// A JSON number or an int64 string, as a code (codes are small: jsonpb
// writes the int32 as a number).
std::optional<int64_t> CodeField(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return std::nullopt;
  if (it->value.IsInt64()) return it->value.GetInt64();
  return std::nullopt;
}

std::string TextField(const Value& object, const char* name) {
  auto it = object.FindMember(name);
  if (it == object.MemberEnd() || !it->value.IsString()) return "";
  return std::string(it->value.GetString(), it->value.GetStringLength());
}

// The Status of an error object: {"error":"..","message":"..","code":N}
// (unary) or {"error":{"grpc_code":N,"message":".."}} (stream).
absl::Status ErrorOf(const Value& doc) {
  const Value& error = doc["error"];
  const Value& holder = error.IsObject() ? error : doc;
  std::string message = TextField(holder, "message");
  if (message.empty() && error.IsString()) {
    message.assign(error.GetString(), error.GetStringLength());
  }
  if (message.empty()) message = "error without a message";
  const std::optional<int64_t> code =
      CodeField(holder, error.IsObject() ? "grpc_code" : "code");
  return absl::Status(CodeOf(code.value_or(2)),
                      absl::StrCat("etcd: ", message));
}

bool IsErrorObject(const Value& doc) {
  auto it = doc.FindMember("error");
  return it != doc.MemberEnd() &&
         (it->value.IsString() || it->value.IsObject());
}

// An int64 field: absent is 0 (proto3); present, a JSON string of an optional
// '-' and decimal digits that fits int64 (jsonpb's encoding of int64).
absl::Status Int64Field(const Value& object, const char* name, int64_t* out) {
  *out = 0;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsString()) {
    return Malformed(absl::StrCat("\"", name, "\" is not an int64 string"));
  }
  const absl::string_view text(it->value.GetString(),
                               it->value.GetStringLength());
  bool ok = !text.empty() && text.size() <= 20;
  for (size_t i = 0; ok && i < text.size(); ++i) {
    ok = absl::ascii_isdigit(static_cast<unsigned char>(text[i])) ||
         (i == 0 && text[i] == '-' && text.size() > 1);
  }
  if (!ok || !absl::SimpleAtoi(text, out)) {
    *out = 0;
    return Malformed(absl::StrCat("\"", name, "\" is not an int64"));
  }
  return absl::OkStatus();
}

// A bytes field: absent is empty; present, a base64 string.
absl::Status BytesField(const Value& object, const char* name,
                        std::string* out) {
  out->clear();
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsString() ||
      !absl::Base64Unescape(
          absl::string_view(it->value.GetString(), it->value.GetStringLength()),
          out)) {
    out->clear();
    return Malformed(absl::StrCat("\"", name, "\" is not base64"));
  }
  return absl::OkStatus();
}

// A bool field: absent is false.
absl::Status BoolField(const Value& object, const char* name, bool* out) {
  *out = false;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsBool()) {
    return Malformed(absl::StrCat("\"", name, "\" is not a boolean"));
  }
  *out = it->value.GetBool();
  return absl::OkStatus();
}

// A message field: absent is an empty message (`*out` null then); present,
// an object.
absl::Status ObjectField(const Value& object, const char* name,
                         const Value** out) {
  *out = nullptr;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsObject()) {
    return Malformed(absl::StrCat("\"", name, "\" is not an object"));
  }
  *out = &it->value;
  return absl::OkStatus();
}

// A repeated field: absent is empty (`*out` null then); present, an array.
absl::Status ArrayField(const Value& object, const char* name,
                        const Value** out) {
  *out = nullptr;
  auto it = object.FindMember(name);
  if (it == object.MemberEnd()) return absl::OkStatus();
  if (!it->value.IsArray()) {
    return Malformed(absl::StrCat("\"", name, "\" is not an array"));
  }
  *out = &it->value;
  return absl::OkStatus();
}

// header.revision (absent header or revision: 0).
absl::Status HeaderRevision(const Value& response, int64_t* revision) {
  *revision = 0;
  const Value* header;
  if (absl::Status s = ObjectField(response, "header", &header); !s.ok()) {
    return s;
  }
  if (header == nullptr) return absl::OkStatus();
  return Int64Field(*header, "revision", revision);
}

absl::Status ParseKv(const Value& v, KeyValue* kv) {
  if (!v.IsObject()) return Malformed("a kv is not an object");
  if (absl::Status s = BytesField(v, "key", &kv->key); !s.ok()) return s;
  if (absl::Status s = BytesField(v, "value", &kv->value); !s.ok()) return s;
  if (absl::Status s = Int64Field(v, "create_revision", &kv->create_revision);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Int64Field(v, "mod_revision", &kv->mod_revision);
      !s.ok()) {
    return s;
  }
  return Int64Field(v, "lease", &kv->lease);
}

// A RangeResponse object (the whole answer, or a txn's response_range).
absl::Status ParseRangeObject(const Value& response, RangeResult* out) {
  if (absl::Status s = HeaderRevision(response, &out->revision); !s.ok()) {
    return s;
  }
  const Value* kvs;
  if (absl::Status s = ArrayField(response, "kvs", &kvs); !s.ok()) return s;
  out->kvs.clear();
  if (kvs == nullptr) return absl::OkStatus();
  out->kvs.reserve(kvs->Size());
  for (const Value& v : kvs->GetArray()) {
    KeyValue kv;
    if (absl::Status s = ParseKv(v, &kv); !s.ok()) return s;
    out->kvs.push_back(std::move(kv));
  }
  return absl::OkStatus();
}

// The document of a 2xx body, or the error it holds.
absl::Status Prepare(absl::string_view body, rapidjson::Document* doc) {
  if (absl::Status s = ParseDocument(body, doc); !s.ok()) return s;
  if (IsErrorObject(*doc)) return ErrorOf(*doc);
  return absl::OkStatus();
}

}  // namespace

// ------------------------------------------------------------ request bodies

std::string GrantBody(int64_t ttl_s) {
  return absl::StrCat("{\"TTL\":\"", ttl_s, "\"}");
}

std::string LeaseIdBody(int64_t lease) {
  return absl::StrCat("{\"ID\":\"", lease, "\"}");
}

std::string PutBody(absl::string_view key, absl::string_view value,
                    int64_t lease) {
  return absl::StrCat("{", PutFields(key, value, lease), "}");
}

std::string RangeBody(absl::string_view key, absl::string_view range_end) {
  return absl::StrCat("{", KeyFields(key, range_end), "}");
}

std::string DeleteBody(absl::string_view key, absl::string_view range_end) {
  return absl::StrCat("{", KeyFields(key, range_end), "}");
}

std::string PutIfAbsentBody(absl::string_view key, absl::string_view value,
                            int64_t lease) {
  return absl::StrCat(
      "{\"compare\":[{", KeyFields(key, ""),
      ",\"target\":\"CREATE\",\"result\":\"EQUAL\",\"create_revision\":\"0\"}]"
      ",\"success\":[{\"request_put\":{",
      PutFields(key, value, lease), "}}],\"failure\":[{\"request_range\":{",
      KeyFields(key, ""), "}}]}");
}

std::string DeleteIfValueBody(absl::string_view key,
                              absl::string_view expected) {
  return absl::StrCat(
      "{\"compare\":[{", KeyFields(key, ""),
      ",\"target\":\"VALUE\",\"result\":\"EQUAL\",\"value\":\"", B64(expected),
      "\"}],\"success\":[{\"request_delete_range\":{", KeyFields(key, ""),
      "}}],\"failure\":[{\"request_range\":{", KeyFields(key, ""), "}}]}");
}

// ------------------------------------------------------------------ parsers

absl::Status ErrorStatus(int http_status, absl::string_view body) {
  rapidjson::Document doc;
  if (ParseDocument(body, &doc).ok() && IsErrorObject(doc)) {
    return ErrorOf(doc);
  }
  const std::string what = absl::StrCat("etcd: HTTP ", http_status);
  if (http_status >= 500) return absl::UnavailableError(what);
  if (http_status == 404) return absl::NotFoundError(what);
  return absl::UnknownError(what);
}

absl::StatusOr<LeaseGrant> ParseGrant(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  LeaseGrant grant;
  if (absl::Status s = Int64Field(doc, "ID", &grant.id); !s.ok()) return s;
  if (absl::Status s = Int64Field(doc, "TTL", &grant.ttl_s); !s.ok()) return s;
  if (grant.id == 0) return Malformed("a grant without a lease ID");
  if (grant.ttl_s <= 0) return Malformed("a grant without a TTL");
  return grant;
}

absl::StatusOr<int64_t> ParseKeepAlive(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  const Value* result;
  if (absl::Status s = ObjectField(doc, "result", &result); !s.ok()) return s;
  if (result == nullptr) return Malformed("a keep-alive without a result");
  int64_t ttl;
  if (absl::Status s = Int64Field(*result, "TTL", &ttl); !s.ok()) return s;
  if (ttl <= 0) return absl::NotFoundError("etcd: the lease is gone");
  return ttl;
}

absl::StatusOr<int64_t> ParseRevision(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  int64_t revision;
  if (absl::Status s = HeaderRevision(doc, &revision); !s.ok()) return s;
  return revision;
}

absl::StatusOr<RangeResult> ParseRange(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  RangeResult out;
  if (absl::Status s = ParseRangeObject(doc, &out); !s.ok()) return s;
  return out;
}

absl::StatusOr<int64_t> ParseDelete(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  int64_t revision;
  if (absl::Status s = HeaderRevision(doc, &revision); !s.ok()) return s;
  int64_t deleted;
  if (absl::Status s = Int64Field(doc, "deleted", &deleted); !s.ok()) return s;
  if (deleted < 0) return Malformed("a negative deleted count");
  return deleted;
}

absl::StatusOr<TxnResult> ParseTxn(absl::string_view body) {
  rapidjson::Document doc;
  if (absl::Status s = Prepare(body, &doc); !s.ok()) return s;
  TxnResult out;
  if (absl::Status s = HeaderRevision(doc, &out.revision); !s.ok()) return s;
  if (absl::Status s = BoolField(doc, "succeeded", &out.succeeded); !s.ok()) {
    return s;
  }
  const Value* responses;
  if (absl::Status s = ArrayField(doc, "responses", &responses); !s.ok()) {
    return s;
  }
  if (out.succeeded) return out;
  // The failure branch is one range of the key: its first kv is the key now.
  if (responses == nullptr || responses->Size() != 1 ||
      !(*responses)[0].IsObject()) {
    return Malformed("a failed txn without its one range response");
  }
  const Value* range;
  if (absl::Status s = ObjectField((*responses)[0], "response_range", &range);
      !s.ok()) {
    return s;
  }
  if (range == nullptr) return Malformed("a failed txn without its range");
  RangeResult current;
  if (absl::Status s = ParseRangeObject(*range, &current); !s.ok()) return s;
  if (!current.kvs.empty()) {
    out.current_exists = true;
    out.current = std::move(current.kvs.front());
  }
  return out;
}

}  // namespace pimap::etcd
