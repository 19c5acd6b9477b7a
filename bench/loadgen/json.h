// A tiny ordered JSON value for the bench's result file (writer only).
#ifndef PIMAP_BENCH_LOADGEN_JSON_H_
#define PIMAP_BENCH_LOADGEN_JSON_H_

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace pimap::bench {

class Json {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };
  Json() = default;
  Json(double v) : type_(Type::kNumber), num_(v) {}             // NOLINT
  Json(int v) : type_(Type::kNumber), num_(v) {}                // NOLINT
  Json(int64_t v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}  // NOLINT
  Json(uint64_t v) : type_(Type::kNumber), num_(static_cast<double>(v)) {}  // NOLINT
  Json(bool v) : type_(Type::kBool), bool_(v) {}                // NOLINT
  Json(const char* v) : type_(Type::kString), str_(v) {}        // NOLINT
  Json(std::string v) : type_(Type::kString), str_(std::move(v)) {}  // NOLINT
  static Json Object() { Json j; j.type_ = Type::kObject; return j; }
  static Json Array() { Json j; j.type_ = Type::kArray; return j; }

  Json& operator[](const std::string& key) {
    if (type_ != Type::kObject) { type_ = Type::kObject; obj_.clear(); }
    for (auto& kv : obj_) if (kv.first == key) return kv.second;
    obj_.emplace_back(key, Json());
    return obj_.back().second;
  }
  const Json* Find(const std::string& key) const {
    for (auto& kv : obj_) if (kv.first == key) return &kv.second;
    return nullptr;
  }
  void Push(Json v) { type_ = Type::kArray; arr_.push_back(std::move(v)); }
  bool is_number() const { return type_ == Type::kNumber; }
  double number() const { return num_; }

  std::string Dump(int indent = 0) const {
    std::string out;
    DumpTo(&out, indent, 0);
    return out;
  }

 private:
  static void Escape(const std::string& s, std::string* out) {
    out->push_back('"');
    for (unsigned char c : s) {
      switch (c) {
        case '"': *out += "\\\""; break;
        case '\\': *out += "\\\\"; break;
        case '\n': *out += "\\n"; break;
        case '\r': *out += "\\r"; break;
        case '\t': *out += "\\t"; break;
        default:
          if (c < 0x20) {
            char buf[8];
            std::snprintf(buf, sizeof(buf), "\\u%04x", c);
            *out += buf;
          } else {
            out->push_back(static_cast<char>(c));
          }
      }
    }
    out->push_back('"');
  }
  void DumpTo(std::string* out, int indent, int depth) const {
    auto nl = [&](int d) {
      if (indent <= 0) return;
      out->push_back('\n');
      out->append(static_cast<size_t>(indent * d), ' ');
    };
    switch (type_) {
      case Type::kNull: *out += "null"; break;
      case Type::kBool: *out += bool_ ? "true" : "false"; break;
      case Type::kNumber: {
        if (!std::isfinite(num_)) { *out += "null"; break; }
        char buf[40];
        if (num_ == std::floor(num_) && std::fabs(num_) < 1e15)
          std::snprintf(buf, sizeof(buf), "%.0f", num_);
        else
          std::snprintf(buf, sizeof(buf), "%.6g", num_);
        *out += buf;
        break;
      }
      case Type::kString: Escape(str_, out); break;
      case Type::kArray: {
        out->push_back('[');
        bool simple = true;
        for (auto& v : arr_) simple &= v.type_ == Type::kNumber;
        for (size_t i = 0; i < arr_.size(); ++i) {
          if (i) out->push_back(',');
          if (!simple) nl(depth + 1);
          arr_[i].DumpTo(out, indent, depth + 1);
        }
        if (!simple && !arr_.empty()) nl(depth);
        out->push_back(']');
        break;
      }
      case Type::kObject: {
        out->push_back('{');
        for (size_t i = 0; i < obj_.size(); ++i) {
          if (i) out->push_back(',');
          nl(depth + 1);
          Escape(obj_[i].first, out);
          *out += indent > 0 ? ": " : ":";
          obj_[i].second.DumpTo(out, indent, depth + 1);
        }
        if (!obj_.empty()) nl(depth);
        out->push_back('}');
        break;
      }
    }
  }

  Type type_ = Type::kNull;
  double num_ = 0;
  bool bool_ = false;
  std::string str_;
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
};

}  // namespace pimap::bench

#endif  // PIMAP_BENCH_LOADGEN_JSON_H_
