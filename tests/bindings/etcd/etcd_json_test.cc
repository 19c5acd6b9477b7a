// etcd's gateway JSON (bindings/etcd/etcd_json.h): the request bodies, and
// every parser on bodies captured from the real server (Debian's etcd 3.4.23,
// with curl) and on malformed ones.
#include "bindings/etcd/etcd_json.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"

namespace pimap::etcd {
namespace {

constexpr absl::string_view kHeader =
    "\"header\":{\"cluster_id\":\"324952591200643719\",\"member_id\":"
    "\"3319814642761637952\",\"revision\":\"7\",\"raft_term\":\"2\"}";

std::string WithHeader(absl::string_view rest) {
  return absl::StrCat("{", kHeader, rest, "}");
}

// ------------------------------------------------------------ request bodies

TEST(EtcdJsonTest, RequestBodies) {
  EXPECT_EQ(GrantBody(5), R"({"TTL":"5"})");
  EXPECT_EQ(LeaseIdBody(2324035888307220495),
            R"({"ID":"2324035888307220495"})");
  EXPECT_EQ(PutBody("foo", "bar", 0), R"({"key":"Zm9v","value":"YmFy"})");
  EXPECT_EQ(PutBody("foo", "", 12),
            R"({"key":"Zm9v","value":"","lease":"12"})");
  EXPECT_EQ(RangeBody("foo", ""), R"({"key":"Zm9v"})");
  EXPECT_EQ(RangeBody("foo", "fop"), R"({"key":"Zm9v","range_end":"Zm9w"})");
  EXPECT_EQ(DeleteBody("foo", std::string(1, '\0')),
            R"({"key":"Zm9v","range_end":"AA=="})");
  EXPECT_EQ(PutIfAbsentBody("user/alice", "node1", 0),
            R"({"compare":[{"key":"dXNlci9hbGljZQ==","target":"CREATE",)"
            R"("result":"EQUAL","create_revision":"0"}],"success":[)"
            R"({"request_put":{"key":"dXNlci9hbGljZQ==","value":"bm9kZTE="}}],)"
            R"("failure":[{"request_range":{"key":"dXNlci9hbGljZQ=="}}]})");
  EXPECT_EQ(DeleteIfValueBody("user/alice", "node1"),
            R"({"compare":[{"key":"dXNlci9hbGljZQ==","target":"VALUE",)"
            R"("result":"EQUAL","value":"bm9kZTE="}],"success":[)"
            R"({"request_delete_range":{"key":"dXNlci9hbGljZQ=="}}],)"
            R"("failure":[{"request_range":{"key":"dXNlci9hbGljZQ=="}}]})");
  // Bytes are bytes.
  EXPECT_EQ(RangeBody(std::string("\0\xff\"", 3), ""), R"({"key":"AP8i"})");
}

TEST(EtcdJsonTest, PrefixEnd) {
  EXPECT_EQ(PrefixEnd("users/"), "users0");
  EXPECT_EQ(PrefixEnd("a\xff"), "b");
  EXPECT_EQ(PrefixEnd("a\xfe\xff\xff"), "a\xff");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
  EXPECT_EQ(PrefixEnd("\xff\xff"), std::string(1, '\0'));
}

// ------------------------------------------------------------------- grant

TEST(EtcdJsonTest, GrantReal) {
  absl::StatusOr<LeaseGrant> g =
      ParseGrant(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
                 R"("3319814642761637952","revision":"1","raft_term":"2"},)"
                 R"("ID":"2324035888307220486","TTL":"5"})");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ(g->id, 2324035888307220486);
  EXPECT_EQ(g->ttl_s, 5);
}

TEST(EtcdJsonTest, GrantMalformed) {
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"TTL":"5")")).ok());  // no ID
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":"1")")).ok());   // no TTL
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":1,"TTL":"5")")).ok());
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":"1x","TTL":"5")")).ok());
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":"+1","TTL":"5")")).ok());
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":" 1","TTL":"5")")).ok());
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":"","TTL":"5")")).ok());
  EXPECT_FALSE(ParseGrant(WithHeader(R"(,"ID":"-","TTL":"5")")).ok());
  EXPECT_FALSE(
      ParseGrant(WithHeader(R"(,"ID":"9223372036854775808","TTL":"5")")).ok());
  absl::StatusOr<LeaseGrant> big =
      ParseGrant(WithHeader(R"(,"ID":"9223372036854775807","TTL":"5")"));
  ASSERT_TRUE(big.ok()) << big.status();
  EXPECT_EQ(big->id, 9223372036854775807);
  EXPECT_FALSE(ParseGrant("").ok());
  EXPECT_FALSE(ParseGrant("[]").ok());
  EXPECT_FALSE(ParseGrant(R"({"ID":"1","TTL":"5"} x)").ok());
}

// -------------------------------------------------------------- keep-alive

TEST(EtcdJsonTest, KeepAliveReal) {
  // One chunk of the streamed answer, with its newline.
  absl::StatusOr<int64_t> ttl = ParseKeepAlive(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"4","raft_term":"2"},)"
      R"("ID":"2324035888307220495","TTL":"3"}})"
      "\n");
  ASSERT_TRUE(ttl.ok()) << ttl.status();
  EXPECT_EQ(*ttl, 3);
}

TEST(EtcdJsonTest, KeepAliveOfAGoneLeaseIsNotFound) {
  // Expired, revoked or unknown: 200, and no TTL.
  absl::StatusOr<int64_t> ttl = ParseKeepAlive(
      R"({"result":{"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"8","raft_term":"2"},)"
      R"("ID":"2324035888307220518"}})"
      "\n");
  EXPECT_EQ(ttl.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      ParseKeepAlive(R"({"result":{"ID":"1","TTL":"0"}})").status().code(),
      absl::StatusCode::kNotFound);
}

TEST(EtcdJsonTest, KeepAliveStreamError) {
  absl::StatusOr<int64_t> ttl = ParseKeepAlive(
      R"({"error":{"grpc_code":14,"http_code":503,"message":"no leader",)"
      R"("http_status":"Service Unavailable"}})");
  EXPECT_EQ(ttl.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ttl.status().message(), "etcd: no leader");
}

TEST(EtcdJsonTest, KeepAliveMalformed) {
  EXPECT_FALSE(ParseKeepAlive(WithHeader(R"(,"TTL":"3")")).ok());  // no result
  EXPECT_FALSE(ParseKeepAlive(R"({"result":"x"})").ok());
  EXPECT_FALSE(ParseKeepAlive(R"({"result":{"TTL":3}})").ok());
  // Two results (two messages in one body): not what one keep-alive gets.
  EXPECT_FALSE(ParseKeepAlive(R"({"result":{"TTL":"3"}})"
                              "\n"
                              R"({"result":{"TTL":"3"}})")
                   .ok());
}

// --------------------------------------------------------------------- put

TEST(EtcdJsonTest, PutReal) {
  absl::StatusOr<int64_t> revision = ParseRevision(
      R"({"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"2","raft_term":"2"}})");
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(*revision, 2);
  EXPECT_FALSE(ParseRevision(R"({"header":{"revision":2}})").ok());
  EXPECT_FALSE(ParseRevision(R"({"header":"x"})").ok());
}

// ------------------------------------------------------------------- range

TEST(EtcdJsonTest, RangeReal) {
  absl::StatusOr<RangeResult> r = ParseRange(
      R"({"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"3","raft_term":"2"},"kvs":[)"
      R"({"key":"Zm9v","create_revision":"2","mod_revision":"2",)"
      R"("version":"1","value":"YmFy"},)"
      R"({"key":"Zm9vMg==","create_revision":"3","mod_revision":"3",)"
      R"("version":"1"}],"count":"2"})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, 3);
  ASSERT_EQ(r->kvs.size(), 2u);
  EXPECT_EQ(r->kvs[0].key, "foo");
  EXPECT_EQ(r->kvs[0].value, "bar");
  EXPECT_EQ(r->kvs[0].create_revision, 2);
  EXPECT_EQ(r->kvs[0].mod_revision, 2);
  EXPECT_EQ(r->kvs[0].lease, 0);
  EXPECT_EQ(r->kvs[1].key, "foo2");
  EXPECT_EQ(r->kvs[1].value, "");  // empty value: omitted
}

TEST(EtcdJsonTest, RangeRealWithLease) {
  absl::StatusOr<RangeResult> r = ParseRange(
      R"({"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"5","raft_term":"2"},"kvs":[)"
      R"({"key":"bGVhc2Vk","create_revision":"5","mod_revision":"5",)"
      R"("version":"1","value":"dg==","lease":"2324035888307220495"}],)"
      R"("count":"1"})");
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->kvs.size(), 1u);
  EXPECT_EQ(r->kvs[0].key, "leased");
  EXPECT_EQ(r->kvs[0].value, "v");
  EXPECT_EQ(r->kvs[0].lease, 2324035888307220495);
}

TEST(EtcdJsonTest, RangeRealOfNothing) {
  absl::StatusOr<RangeResult> r =
      ParseRange(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
                 R"("3319814642761637952","revision":"2","raft_term":"2"}})");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, 2);
  EXPECT_TRUE(r->kvs.empty());
  // Even the header may be absent (all zero).
  r = ParseRange("{}");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->revision, 0);
}

TEST(EtcdJsonTest, RangeMalformed) {
  EXPECT_FALSE(ParseRange(WithHeader(R"(,"kvs":{})")).ok());
  EXPECT_FALSE(ParseRange(WithHeader(R"(,"kvs":["x"])")).ok());
  EXPECT_FALSE(ParseRange(WithHeader(R"(,"kvs":[{"key":"!!"}])")).ok());
  EXPECT_FALSE(ParseRange(WithHeader(R"(,"kvs":[{"key":7}])")).ok());
  EXPECT_FALSE(
      ParseRange(WithHeader(R"(,"kvs":[{"key":"Zm9v","mod_revision":2}])"))
          .ok());
  EXPECT_FALSE(
      ParseRange(WithHeader(R"(,"kvs":[{"key":"Zm9v","lease":"1.5"}])")).ok());
  EXPECT_FALSE(ParseRange("{\"kvs\":[").ok());
  EXPECT_FALSE(ParseRange("{\"key\":\"\xff\"}").ok());  // not UTF-8
  // Deep nesting is refused by value, not by recursion.
  EXPECT_FALSE(ParseRange(absl::StrCat(std::string(100000, '['),
                                       std::string(100000, ']')))
                   .ok());
}

TEST(EtcdJsonTest, ResponsesAreBounded) {
  std::string body = WithHeader("");
  body.insert(1, std::string(kMaxResponseBytes, ' '));
  EXPECT_EQ(ParseRange(body).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(ParseRange(body.substr(body.size() - kMaxResponseBytes)).ok(),
            false);  // cut: malformed
  body.erase(1, body.size() - kMaxResponseBytes);
  EXPECT_TRUE(ParseRange(body).ok());  // exactly at the bound
}

// ----------------------------------------------------------------- delete

TEST(EtcdJsonTest, DeleteReal) {
  absl::StatusOr<int64_t> n =
      ParseDelete(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
                  R"("3319814642761637952","revision":"4","raft_term":"2"},)"
                  R"("deleted":"1"})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1);
  n = ParseDelete(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
                  R"("3319814642761637952","revision":"4","raft_term":"2"}})");
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0);  // nothing deleted: omitted
  EXPECT_FALSE(ParseDelete(WithHeader(R"(,"deleted":"-1")")).ok());
  EXPECT_FALSE(ParseDelete(WithHeader(R"(,"deleted":true)")).ok());
}

// -------------------------------------------------------------------- txn

TEST(EtcdJsonTest, TxnPutIfAbsentSucceededReal) {
  absl::StatusOr<TxnResult> t =
      ParseTxn(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
               R"("3319814642761637952","revision":"7","raft_term":"2"},)"
               R"("succeeded":true,"responses":[{"response_put":{"header":)"
               R"({"revision":"7"}}}]})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->succeeded);
  EXPECT_EQ(t->revision, 7);
  EXPECT_FALSE(t->current_exists);
}

TEST(EtcdJsonTest, TxnPutIfAbsentFailedReal) {
  // No "succeeded" (false omitted); the failure branch's range.
  absl::StatusOr<TxnResult> t =
      ParseTxn(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
               R"("3319814642761637952","revision":"7","raft_term":"2"},)"
               R"("responses":[{"response_range":{"header":{"revision":"7"},)"
               R"("kvs":[{"key":"dXNlci9hbGljZQ==","create_revision":"7",)"
               R"("mod_revision":"7","version":"1","value":"bm9kZTE="}],)"
               R"("count":"1"}}]})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->succeeded);
  EXPECT_EQ(t->revision, 7);
  ASSERT_TRUE(t->current_exists);
  EXPECT_EQ(t->current.key, "user/alice");
  EXPECT_EQ(t->current.value, "node1");
  EXPECT_EQ(t->current.create_revision, 7);
}

TEST(EtcdJsonTest, TxnDeleteIfValueReal) {
  absl::StatusOr<TxnResult> t =
      ParseTxn(R"({"header":{"cluster_id":"324952591200643719","member_id":)"
               R"("3319814642761637952","revision":"8","raft_term":"2"},)"
               R"("succeeded":true,"responses":[{"response_delete_range":)"
               R"({"header":{"revision":"8"},"deleted":"1"}}]})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_TRUE(t->succeeded);
  EXPECT_EQ(t->revision, 8);
  // The key was gone already: the failure branch's range is empty.
  t = ParseTxn(
      R"({"header":{"cluster_id":"324952591200643719","member_id":)"
      R"("3319814642761637952","revision":"8","raft_term":"2"},)"
      R"("responses":[{"response_range":{"header":{"revision":"8"}}}]})");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_FALSE(t->succeeded);
  EXPECT_FALSE(t->current_exists);
}

TEST(EtcdJsonTest, TxnMalformed) {
  EXPECT_FALSE(ParseTxn(WithHeader(R"(,"succeeded":"true")")).ok());
  EXPECT_FALSE(ParseTxn(WithHeader("")).ok());  // failed, no range
  EXPECT_FALSE(ParseTxn(WithHeader(R"(,"responses":[{}])")).ok());
  EXPECT_FALSE(ParseTxn(WithHeader(R"(,"responses":[1])")).ok());
  EXPECT_FALSE(
      ParseTxn(WithHeader(R"(,"responses":[{"response_range":[]}])")).ok());
  EXPECT_FALSE(ParseTxn(WithHeader(R"(,"responses":{})")).ok());
}

// ------------------------------------------------------------------ errors

TEST(EtcdJsonTest, ErrorBodiesReal) {
  absl::Status s = ErrorStatus(
      404, R"({"error":"etcdserver: requested lease not found","message":)"
           R"("etcdserver: requested lease not found","code":5})");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "etcd: etcdserver: requested lease not found");
  s = ErrorStatus(400, R"({"error":"illegal base64 data at input byte 0",)"
                       R"("message":"illegal base64 data at input byte 0",)"
                       R"("code":3})");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  s = ErrorStatus(
      500,
      R"({"error":"invalid character 'g' looking for beginning of value",)"
      R"("message":"invalid character 'g' looking for beginning of value",)"
      R"("code":2})");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  // The same error in a 2xx body (a parser's input) is that error.
  EXPECT_EQ(
      ParseRange(R"({"error":"x","message":"m","code":14})").status().code(),
      absl::StatusCode::kUnavailable);
}

TEST(EtcdJsonTest, ErrorBodiesOdd) {
  // Not JSON (the gateway's 404 for an unknown path is text).
  absl::Status s = ErrorStatus(404, "Not Found\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(ErrorStatus(503, "").code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorStatus(418, "{}").code(), absl::StatusCode::kUnknown);
  // No message: the error text; a code out of range: Unknown.
  s = ErrorStatus(400, R"({"error":"e","code":99})");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  EXPECT_EQ(s.message(), "etcd: e");
  s = ErrorStatus(400, R"({"error":"e","code":0})");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnknown);
  s = ErrorStatus(400, R"({"error":{}})");
  EXPECT_FALSE(s.ok());
}

}  // namespace
}  // namespace pimap::etcd
