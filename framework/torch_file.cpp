#include "framework/torch_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <unordered_map>

#include "framework/zip_reader.h"

namespace oodkit {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "PyTorch file reading assumes a little-endian host");

namespace {

// ------------------------------------------------------------------ storage types
// The element types of torch.<T>Storage; `loaded` is the dtype a returned tensor gets (unsupported
// ones are refused when a returned tensor uses them).
enum class Elem : uint8_t { F32, F64, F16, BF16, I64, I32, U8, Bool, I8, I16, C64, C128 };
struct StorageType {
  const char* name;  // torch.<name>
  Elem elem;
  size_t size;
  const char* torch_dtype;
  bool supported;
  DType loaded;
};
constexpr StorageType kStorageTypes[] = {
    {"FloatStorage", Elem::F32, 4, "float32", true, DType::F32},
    {"DoubleStorage", Elem::F64, 8, "float64", true, DType::F64},
    {"HalfStorage", Elem::F16, 2, "float16", true, DType::F32},
    {"BFloat16Storage", Elem::BF16, 2, "bfloat16", true, DType::F32},
    {"LongStorage", Elem::I64, 8, "int64", true, DType::I64},
    {"IntStorage", Elem::I32, 4, "int32", true, DType::I32},
    {"ByteStorage", Elem::U8, 1, "uint8", true, DType::U8},
    {"BoolStorage", Elem::Bool, 1, "bool", true, DType::U8},
    {"CharStorage", Elem::I8, 1, "int8", false, DType::U8},
    {"ShortStorage", Elem::I16, 2, "int16", false, DType::U8},
    {"ComplexFloatStorage", Elem::C64, 8, "complex64", false, DType::U8},
    {"ComplexDoubleStorage", Elem::C128, 16, "complex128", false, DType::U8},
};

// ------------------------------------------------------------------ the globals a checkpoint may name
enum class Global : uint8_t { OrderedDict, RebuildTensorV2, RebuildTensor, RebuildParameter, RebuildParameterWithState,
                              Storage };

// ------------------------------------------------------------------ unpickled values
enum class Kind : uint8_t { None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict, Global, Storage, Tensor };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::BigInt: return "int (over 64 bits)";
    case Kind::Float: return "float";
    case Kind::String: return "str";
    case Kind::Bytes: return "bytes";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
    case Kind::Tensor: return "tensor";
  }
  return "?";
}

// Values live in the unpickler's arena and refer to each other by plain pointers: a pickle can
// make cycles (a list appended to itself) and deep nesting, which owning pointers would leak or
// destroy recursively.
struct Value {
  Kind kind = Kind::None;
  int64_t i = 0;  // Bool, Int; Global: the Global id; Storage: index of the storage; Tensor: of the tensor
  double f = 0;
  std::string s;  // String, Bytes; Global: "module.name"; Storage: the storage type's index (unused)
  std::vector<Value*> items;  // Tuple, List; Dict: key0, value0, key1, value1, ...
  std::unique_ptr<std::unordered_map<std::string, size_t>> index;  // Dict: key text -> position in items
};

struct StorageRef {
  std::string key;  // data/<key> (ZIP), or its name in the storage key list (legacy)
  const StorageType* type;
  uint64_t numel;
  const ZipEntry* entry;     // ZIP: its entry; legacy: null
  uint64_t file_offset = 0;  // legacy: where its numel * type->size bytes start in the file
};

struct TensorRef {
  size_t storage;
  int64_t offset;  // in elements
  Shape size, stride;
};

// The most values one pickle may create (a state dict needs about 20 per tensor).
constexpr size_t kMaxValues = size_t(1) << 22;
constexpr size_t kMaxDims = 64;

// One pickle from `n` bytes at `data`, named `what` in errors ("data.pkl"). `zip`: a ZIP
// checkpoint, whose storages are <archive>/data/<key> entries (persistent ids of 5 items); null:
// a legacy file, whose storages follow the pickles (persistent ids of 6 items, the last None).
class Unpickler {
 public:
  Unpickler(const std::string& prefix, const uint8_t* data, size_t n, const ZipReader* zip, const std::string& archive,
            std::string what = "data.pkl")
      : prefix_(prefix), what_(std::move(what)), p_(data), n_(n), zip_(zip), archive_(archive) {}

  Value* run();
  size_t end() const { return pos_; }  // bytes read, up to and including STOP

  std::vector<StorageRef> storages;
  std::vector<TensorRef> tensors;

 private:
  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    OODKIT_FAIL(prefix_, what_, " byte ", op_pos_, ": ", args..., " (damaged or not a PyTorch checkpoint)");
  }

  Value* make(Kind k) {
    if (arena_.size() >= kMaxValues)
      OODKIT_FAIL(prefix_, what_, " creates more than ", kMaxValues, " objects (not a state-dict checkpoint)");
    arena_.push_back(std::make_unique<Value>());
    arena_.back()->kind = k;
    return arena_.back().get();
  }
  Value* make_int(int64_t v) {
    Value* x = make(Kind::Int);
    x->i = v;
    return x;
  }

  const uint8_t* take(size_t count) {
    if (count > n_ - pos_) fail("opcode argument runs past the end of ", what_);
    const uint8_t* q = p_ + pos_;
    pos_ += count;
    return q;
  }
  uint64_t take_le(size_t count) {
    const uint8_t* q = take(count);
    uint64_t v = 0;
    for (size_t k = count; k-- > 0;) v = (v << 8) | q[k];
    return v;
  }
  std::string take_line() {
    const uint8_t* start = p_ + pos_;
    const void* nl = std::memchr(start, '\n', n_ - pos_);
    if (!nl) fail("GLOBAL argument without a newline");
    const size_t len = size_t(static_cast<const uint8_t*>(nl) - start);
    pos_ += len + 1;
    return std::string(reinterpret_cast<const char*>(start), len);
  }

  void push(Value* v) { stack_.push_back(v); }
  Value* pop() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    Value* v = stack_.back();
    stack_.pop_back();
    return v;
  }
  Value* top() {
    if (stack_.size() <= (marks_.empty() ? 0 : marks_.back())) fail("stack underflow");
    return stack_.back();
  }
  // The values above the last MARK, removed from the stack with the mark.
  std::vector<Value*> pop_mark() {
    if (marks_.empty()) fail("no MARK to pop to");
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Value*> out(stack_.begin() + std::ptrdiff_t(m), stack_.end());
    stack_.resize(m);
    return out;
  }
  Value* tuple_of(std::vector<Value*> items) {
    Value* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }

  void set_item(Value* dict, Value* key, Value* value);
  Value* global(const std::string& module, const std::string& name);
  Value* call(Value* callable, Value* args);
  Value* persistent_load(Value* pid);
  Value* rebuild_tensor(const std::vector<Value*>& args, const char* fn);
  int64_t as_int(Value* v, const char* what) {
    if (v->kind != Kind::Int && v->kind != Kind::Bool) fail(what, " must be an int, got ", kind_name(v->kind));
    return v->i;
  }
  Shape as_shape(Value* v, const char* what) {
    if (v->kind != Kind::Tuple && v->kind != Kind::List) fail(what, " must be a tuple, got ", kind_name(v->kind));
    if (v->items.size() > kMaxDims) fail(what, " has ", v->items.size(), " dimensions (at most ", kMaxDims, ")");
    Shape s;
    for (Value* d : v->items) {
      const int64_t x = as_int(d, what);
      if (x < 0) fail(what, " holds a negative value ", x);
      s.push_back(x);
    }
    return s;
  }

  std::string prefix_, what_;
  const uint8_t* p_;
  size_t n_, pos_ = 0, op_pos_ = 0;
  const ZipReader* zip_;
  std::string archive_;
  std::vector<std::unique_ptr<Value>> arena_;
  std::vector<Value*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Value*> memo_;
  std::unordered_map<std::string, size_t> storage_by_key_;
  Value *none_ = nullptr, *true_ = nullptr, *false_ = nullptr;
};

// The text a dict key is indexed by: str and int (bool as int, as Python hashes it); other keys
// are not indexed (never replaced by a later SETITEM with an equal key).
bool key_text(const Value* k, std::string& out) {
  if (k->kind == Kind::String) {
    out = "s" + k->s;
    return true;
  }
  if (k->kind == Kind::Int || k->kind == Kind::Bool) {
    out = "i" + std::to_string(k->i);
    return true;
  }
  return false;
}

void Unpickler::set_item(Value* dict, Value* key, Value* value) {
  if (dict->kind != Kind::Dict) fail("SETITEM(S) on a ", kind_name(dict->kind), ", not a dict");
  std::string text;
  if (key_text(key, text)) {
    if (!dict->index) dict->index = std::make_unique<std::unordered_map<std::string, size_t>>();
    const auto [it, fresh] = dict->index->emplace(text, dict->items.size());
    if (!fresh) {  // Python replaces the value and keeps the key's position
      dict->items[it->second + 1] = value;
      return;
    }
  }
  dict->items.push_back(key);
  dict->items.push_back(value);
}

Value* Unpickler::global(const std::string& module, const std::string& name) {
  Value* g = make(Kind::Global);
  g->s = module + "." + name;
  if (module == "collections" && name == "OrderedDict") {
    g->i = int64_t(Global::OrderedDict);
  } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
    g->i = int64_t(Global::RebuildTensorV2);
  } else if (module == "torch._utils" && name == "_rebuild_tensor") {
    g->i = int64_t(Global::RebuildTensor);
  } else if (module == "torch._utils" && name == "_rebuild_parameter") {
    g->i = int64_t(Global::RebuildParameter);
  } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
    g->i = int64_t(Global::RebuildParameterWithState);
  } else if (module == "torch" && std::find_if(std::begin(kStorageTypes), std::end(kStorageTypes), [&](const StorageType& t) {
                                    return name == t.name;
                                  }) != std::end(kStorageTypes)) {
    g->i = int64_t(Global::Storage);
  } else {
    std::string hint;
    if (module == "torch._utils" && name == "_rebuild_tensor_v3")
      hint = " (it rebuilds tensors of dtypes without a storage type: uint16, uint32, uint64, float8; convert "
             "them to a supported dtype before saving)";
    else if (module == "torch.storage" && name == "UntypedStorage")
      hint = " (an untyped storage, saved directly or for a tensor of a dtype oodkit does not read)";
    else if (module == "__main__" || module.rfind("torch.nn", 0) == 0 || module.rfind("torchvision", 0) == 0)
      hint = " (a whole pickled model? save model.state_dict() instead)";
    else if (module.rfind("numpy", 0) == 0)
      hint = " (a NumPy value; convert it to a Python number or tensor before saving)";
    OODKIT_FAIL(prefix_, what_, " refers to the global '", g->s, "', which is not allowed", hint,
                ". oodkit reads only tensors, storages and (Ordered)dicts from a checkpoint and executes nothing "
                "in it; load the file with a PyTorch you trust and save its state_dict (torch.save(model."
                "state_dict(), path)) or convert it to safetensors");
  }
  return g;
}

Value* Unpickler::persistent_load(Value* pid) {
  const size_t items = zip_ ? 5 : 6;  // legacy: a sixth item, view_metadata
  if (pid->kind != Kind::Tuple || pid->items.size() != items || pid->items[0]->kind != Kind::String ||
      pid->items[0]->s != "storage")
    fail("persistent id is not a ('storage', type, key, location, numel", zip_ ? "" : ", view_metadata", ") tuple");
  // A legacy view of part of a storage (PyTorch < 1.? saved storage slices so): not read.
  if (!zip_ && pid->items[5]->kind != Kind::None)
    fail("persistent id with view_metadata (a view of part of a storage, as old PyTorch versions saved them), "
         "which oodkit does not read; re-save the file with a current PyTorch");
  Value* type = pid->items[1];
  Value* key = pid->items[2];
  Value* location = pid->items[3];
  if (type->kind != Kind::Global || Global(type->i) != Global::Storage)
    fail("persistent id names a storage type that is not a torch.<T>Storage");
  if (key->kind != Kind::String) fail("storage key must be a str, got ", kind_name(key->kind));
  if (location->kind != Kind::String) fail("storage location must be a str, got ", kind_name(location->kind));
  const int64_t numel = as_int(pid->items[4], "storage size");
  if (numel < 0) fail("storage '", key->s, "' has a negative size ", numel);
  const std::string type_name = type->s.substr(type->s.find('.') + 1);
  const StorageType* st = nullptr;
  for (const StorageType& t : kStorageTypes)
    if (type_name == t.name) st = &t;
  OODKIT_ASSERT(st != nullptr, "storage global ", type->s, " passed the allowlist but is not in the table");

  Value* v = make(Kind::Storage);
  const auto it = storage_by_key_.find(key->s);
  if (it != storage_by_key_.end()) {
    const StorageRef& s = storages[it->second];
    if (s.type != st || s.numel != uint64_t(numel))
      fail("storage '", key->s, "' is named twice with different types or sizes (torch.", s.type->name, " of ",
           s.numel, ", torch.", st->name, " of ", numel, ")");
    v->i = int64_t(it->second);
    return v;
  }
  if (!zip_) {  // legacy: the bytes follow the pickles (load_legacy finds and checks them)
    storage_by_key_.emplace(key->s, storages.size());
    v->i = int64_t(storages.size());
    storages.push_back({key->s, st, uint64_t(numel), nullptr});
    return v;
  }
  const std::string entry_name = archive_ + "/data/" + key->s;
  const ZipEntry* entry = zip_->find(entry_name);
  if (!entry) OODKIT_FAIL(prefix_, "storage '", key->s, "' has no entry '", entry_name, "' in the archive (damaged file)");
  uint64_t nbytes = 0;
  if (__builtin_mul_overflow(uint64_t(numel), uint64_t(st->size), &nbytes) || entry->size != nbytes)
    OODKIT_FAIL(prefix_, "storage '", key->s, "' (torch.", st->name, " of ", numel, " elements) needs ",
                __builtin_mul_overflow(uint64_t(numel), uint64_t(st->size), &nbytes) ? std::string("too many")
                                                                                         : std::to_string(nbytes),
                " bytes but its entry holds ", entry->size, " (damaged file)");
  storage_by_key_.emplace(key->s, storages.size());
  v->i = int64_t(storages.size());
  storages.push_back({key->s, st, uint64_t(numel), entry});
  return v;
}

Value* Unpickler::rebuild_tensor(const std::vector<Value*>& args, const char* fn) {
  if (args.size() < 4) fail(fn, " takes at least 4 arguments, got ", args.size());
  if (args[0]->kind != Kind::Storage) fail(fn, ": the first argument must be a storage, got ", kind_name(args[0]->kind));
  TensorRef t;
  t.storage = size_t(args[0]->i);
  t.offset = as_int(args[1], "storage offset");
  if (t.offset < 0) fail(fn, ": negative storage offset ", t.offset);
  t.size = as_shape(args[2], "tensor size");
  t.stride = as_shape(args[3], "tensor stride");
  if (t.size.size() != t.stride.size())
    fail(fn, ": size ", shape_str(t.size), " and stride ", shape_str(t.stride), " differ in length");
  Value* v = make(Kind::Tensor);
  v->i = int64_t(tensors.size());
  tensors.push_back(std::move(t));
  return v;
}

Value* Unpickler::call(Value* callable, Value* args) {
  if (callable->kind != Kind::Global) fail("REDUCE calls a ", kind_name(callable->kind), ", not a known global");
  if (args->kind != Kind::Tuple) fail("REDUCE arguments must be a tuple, got ", kind_name(args->kind));
  const std::vector<Value*>& a = args->items;
  switch (Global(callable->i)) {
    case Global::OrderedDict:
      if (!a.empty()) fail("collections.OrderedDict is called with arguments");
      return make(Kind::Dict);
    case Global::RebuildTensorV2:
      if (a.size() != 6 && a.size() != 7) fail("_rebuild_tensor_v2 takes 6 or 7 arguments, got ", a.size());
      return rebuild_tensor(a, "_rebuild_tensor_v2");
    case Global::RebuildTensor:
      if (a.size() != 4) fail("_rebuild_tensor takes 4 arguments, got ", a.size());
      return rebuild_tensor(a, "_rebuild_tensor");
    case Global::RebuildParameter:
    case Global::RebuildParameterWithState:
      if (a.size() != 3 && a.size() != 4) fail(callable->s, " takes 3 or 4 arguments, got ", a.size());
      if (a[0]->kind != Kind::Tensor) fail(callable->s, ": the data must be a tensor, got ", kind_name(a[0]->kind));
      return a[0];  // nn.Parameter(data): the data, as state_dict() gives it
    case Global::Storage:
      fail(callable->s, " is called (a storage may only appear in a persistent id)");
  }
  fail("unknown global");
}

Value* Unpickler::run() {
  none_ = make(Kind::None);
  true_ = make(Kind::Bool);
  true_->i = 1;
  false_ = make(Kind::Bool);
  while (true) {
    op_pos_ = pos_;
    if (pos_ >= n_) fail(what_, " ends without a STOP opcode (truncated?)");
    const uint8_t op = p_[pos_++];
    switch (op) {
      case 0x80:  // PROTO
        if (take_le(1) > 5) fail("pickle protocol over 5");
        break;
      case 0x95:  // FRAME (a hint only)
        take_le(8);
        break;
      case '.': {  // STOP
        Value* result = pop();
        return result;
      }
      case '(':  // MARK
        marks_.push_back(stack_.size());
        break;
      case '0':  // POP
        pop();
        break;
      case '1':  // POP_MARK
        pop_mark();
        break;
      case '2':  // DUP
        push(top());
        break;
      case '}':  // EMPTY_DICT
        push(make(Kind::Dict));
        break;
      case ']':  // EMPTY_LIST
        push(make(Kind::List));
        break;
      case ')':  // EMPTY_TUPLE
        push(make(Kind::Tuple));
        break;
      case 'N':
        push(none_);
        break;
      case 0x88:  // NEWTRUE
        push(true_);
        break;
      case 0x89:  // NEWFALSE
        push(false_);
        break;
      case 'J':  // BININT
        push(make_int(int32_t(uint32_t(take_le(4)))));
        break;
      case 'K':  // BININT1
        push(make_int(int64_t(take_le(1))));
        break;
      case 'M':  // BININT2
        push(make_int(int64_t(take_le(2))));
        break;
      case 0x8a:    // LONG1
      case 0x8b: {  // LONG4
        const uint64_t len = take_le(op == 0x8a ? 1 : 4);
        const uint8_t* b = take(size_t(len));
        if (len > 8) {
          push(make(Kind::BigInt));
          break;
        }
        uint64_t v = 0;
        for (size_t k = size_t(len); k-- > 0;) v = (v << 8) | b[k];
        if (len > 0 && len < 8 && (b[len - 1] & 0x80)) v |= ~uint64_t(0) << (8 * len);  // sign-extend
        push(make_int(int64_t(v)));
        break;
      }
      case 'G': {  // BINFLOAT (big-endian)
        const uint8_t* b = take(8);
        uint64_t bits = 0;
        for (int k = 0; k < 8; ++k) bits = (bits << 8) | b[k];
        Value* x = make(Kind::Float);
        std::memcpy(&x->f, &bits, 8);
        push(x);
        break;
      }
      case 'X':     // BINUNICODE
      case 0x8c:    // SHORT_BINUNICODE
      case 0x8d:    // BINUNICODE8
      case 'T':     // BINSTRING (Python 2 str)
      case 'U':     // SHORT_BINSTRING
      case 'B':     // BINBYTES
      case 'C':     // SHORT_BINBYTES
      case 0x8e: {  // BINBYTES8
        const size_t width = (op == 0x8c || op == 'U' || op == 'C') ? 1 : (op == 0x8d || op == 0x8e) ? 8 : 4;
        const uint64_t len = take_le(width);
        if (op == 'T' && int32_t(uint32_t(len)) < 0) fail("BINSTRING with a negative length");
        if (len > n_ - pos_) fail("string of ", len, " bytes runs past the end of ", what_);
        const uint8_t* b = take(size_t(len));
        Value* x = make(op == 'B' || op == 'C' || op == 0x8e ? Kind::Bytes : Kind::String);
        x->s.assign(reinterpret_cast<const char*>(b), size_t(len));
        push(x);
        break;
      }
      case 't':  // TUPLE
        push(tuple_of(pop_mark()));
        break;
      case 0x85: {  // TUPLE1
        Value* a = pop();
        push(tuple_of({a}));
        break;
      }
      case 0x86: {  // TUPLE2
        Value* b = pop();
        Value* a = pop();
        push(tuple_of({a, b}));
        break;
      }
      case 0x87: {  // TUPLE3
        Value* c = pop();
        Value* b = pop();
        Value* a = pop();
        push(tuple_of({a, b, c}));
        break;
      }
      case 'l': {  // LIST
        Value* l = make(Kind::List);
        l->items = pop_mark();
        push(l);
        break;
      }
      case 'd': {  // DICT
        std::vector<Value*> kv = pop_mark();
        if (kv.size() % 2) fail("DICT with an odd number of items");
        Value* d = make(Kind::Dict);
        for (size_t k = 0; k < kv.size(); k += 2) set_item(d, kv[k], kv[k + 1]);
        push(d);
        break;
      }
      case 'a': {  // APPEND
        Value* v = pop();
        Value* l = top();
        if (l->kind != Kind::List) fail("APPEND to a ", kind_name(l->kind), ", not a list");
        l->items.push_back(v);
        break;
      }
      case 'e': {  // APPENDS
        std::vector<Value*> vs = pop_mark();
        Value* l = top();
        if (l->kind != Kind::List) fail("APPENDS to a ", kind_name(l->kind), ", not a list");
        l->items.insert(l->items.end(), vs.begin(), vs.end());
        break;
      }
      case 's': {  // SETITEM
        Value* v = pop();
        Value* k = pop();
        set_item(top(), k, v);
        break;
      }
      case 'u': {  // SETITEMS
        std::vector<Value*> kv = pop_mark();
        if (kv.size() % 2) fail("SETITEMS with an odd number of items");
        Value* d = top();
        for (size_t k = 0; k < kv.size(); k += 2) set_item(d, kv[k], kv[k + 1]);
        break;
      }
      case 'q':  // BINPUT
      case 'r':  // LONG_BINPUT
        memo_[take_le(op == 'q' ? 1 : 4)] = top();
        break;
      case 0x94:  // MEMOIZE
        memo_[memo_.size()] = top();
        break;
      case 'h':    // BINGET
      case 'j': {  // LONG_BINGET
        const uint64_t id = take_le(op == 'h' ? 1 : 4);
        const auto it = memo_.find(id);
        if (it == memo_.end()) fail("memo entry ", id, " is read before it is written");
        push(it->second);
        break;
      }
      case 'c': {  // GLOBAL
        const std::string module = take_line();
        const std::string name = take_line();
        push(global(module, name));
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        Value* name = pop();
        Value* module = pop();
        if (module->kind != Kind::String || name->kind != Kind::String) fail("STACK_GLOBAL needs two strings");
        push(global(module->s, name->s));
        break;
      }
      case 'R': {  // REDUCE
        Value* args = pop();
        Value* fn = pop();
        push(call(fn, args));
        break;
      }
      case 0x81: {  // NEWOBJ: cls.__new__(cls, *args)
        Value* args = pop();
        Value* cls = pop();
        if (cls->kind != Kind::Global || Global(cls->i) != Global::OrderedDict)
          fail("NEWOBJ of a ", cls->kind == Kind::Global ? cls->s : kind_name(cls->kind), " (only collections.OrderedDict)");
        if (args->kind != Kind::Tuple || !args->items.empty()) fail("NEWOBJ of collections.OrderedDict with arguments");
        push(make(Kind::Dict));
        break;
      }
      case 'b': {  // BUILD: the state (an OrderedDict's _metadata, a parameter's __dict__) is dropped
        pop();
        top();
        break;
      }
      case 'Q':  // BINPERSID
        push(persistent_load(pop()));
        break;
      default:
        fail("unsupported pickle opcode 0x", "0123456789abcdef"[op >> 4], "0123456789abcdef"[op & 15],
             " (oodkit reads the opcodes torch.save writes for tensors, dicts, lists, tuples, strings and numbers)");
    }
  }
}

// ------------------------------------------------------------------ materialising tensors
void convert(const StorageType& st, const uint8_t* src, uint8_t* dst, size_t count) {
  switch (st.elem) {
    case Elem::F16:
    case Elem::BF16: {
      float* out = reinterpret_cast<float*>(dst);
      for (size_t k = 0; k < count; ++k) {
        uint16_t h;
        std::memcpy(&h, src + 2 * k, 2);
        out[k] = st.elem == Elem::F16 ? half_to_float(h) : bfloat16_to_float(h);
      }
      break;
    }
    default:  // same layout: F32, F64, I64, I32, U8, Bool (as uint8)
      std::memcpy(dst, src, count * st.size);
  }
}

// Everything read or made from one file (storages read, tensors materialised) is bounded by this
// many times the file's size: overlapping ZIP entries or views repeating one storage cannot ask
// for more memory than a file this size could legitimately need (a torch.save file needs about 2x).
constexpr uint64_t kBudgetFactor = 64;

// `bytes`: the storage's numel * type->size bytes.
Tensor materialise(const std::string& prefix, const std::string& name, const TensorRef& t, const StorageRef& s,
                   const uint8_t* bytes, uint64_t& budget_left) {
  const StorageType& st = *s.type;
  uint64_t numel = 1;
  bool overflow = false;
  for (const int64_t d : t.size) overflow = overflow || __builtin_mul_overflow(numel, uint64_t(d), &numel);
  if (!overflow && numel > 0) {
    // The last element the view reaches must lie in the storage.
    uint64_t last = uint64_t(t.offset);
    for (size_t d = 0; d < t.size.size(); ++d) {
      uint64_t span = 0;
      overflow = overflow || __builtin_mul_overflow(uint64_t(t.size[d] - 1), uint64_t(t.stride[d]), &span) ||
                 __builtin_add_overflow(last, span, &last);
    }
    OODKIT_CHECK(!overflow && last < s.numel, prefix, "tensor '", name, "': a view of size ", shape_str(t.size),
                 ", stride ", shape_str(t.stride), " and offset ", t.offset, " reaches past the ", s.numel,
                 " elements of storage '", s.key, "' (damaged file)");
  }
  OODKIT_CHECK(!overflow, prefix, "tensor '", name, "': size ", shape_str(t.size), " overflows (damaged file)");
  // A view may repeat its storage's elements (stride 0, as expand() makes), and many views may
  // share one storage: what is materialised counts against the budget (see load_torch_file).
  const uint64_t nbytes = numel * dtype_size(st.loaded);  // used only once numel <= 2^60 is checked
  OODKIT_CHECK(numel <= (uint64_t(1) << 60) && nbytes <= budget_left, prefix, "tensor '", name, "': its view of size ",
               shape_str(t.size), " on storage '", s.key, "' would bring the tensors read past ", kBudgetFactor,
               " times the file's size; oodkit does not materialise that much from this file (damaged or hostile)");
  budget_left -= nbytes;
  Tensor out = Tensor::empty(t.size, st.loaded, Device::cpu());
  if (numel == 0) return out;
  uint8_t* dst = static_cast<uint8_t*>(out.raw_data());
  const size_t out_es = dtype_size(st.loaded);
  // Contiguous (row-major) views copy one block; others walk the index, the last dimension inside.
  bool contiguous = true;
  int64_t expect = 1;
  for (size_t d = t.size.size(); d-- > 0;) {
    if (t.size[d] != 1 && t.stride[d] != expect) contiguous = false;
    expect *= t.size[d];
  }
  if (contiguous) {
    convert(st, bytes + size_t(t.offset) * st.size, dst, size_t(numel));
    return out;
  }
  const size_t nd = t.size.size();
  const int64_t inner = t.size[nd - 1], inner_stride = t.stride[nd - 1];
  std::vector<int64_t> idx(nd, 0);
  for (uint64_t done = 0; done < numel; done += uint64_t(inner)) {
    int64_t base = t.offset;
    for (size_t d = 0; d + 1 < nd; ++d) base += idx[d] * t.stride[d];
    for (int64_t k = 0; k < inner; ++k) {
      convert(st, bytes + size_t(base + k * inner_stride) * st.size, dst, 1);
      dst += out_es;
    }
    for (size_t d = nd - 1; d-- > 0;) {  // advance the outer index
      if (++idx[d] < t.size[d]) break;
      idx[d] = 0;
    }
  }
  return out;
}

const Value* dict_get(const Value* dict, const std::string& key) {
  if (!dict->index) return nullptr;
  const auto it = dict->index->find("s" + key);
  return it == dict->index->end() ? nullptr : dict->items[it->second + 1];
}

size_t count_tensors(const Value* dict) {
  size_t n = 0;
  for (size_t k = 0; k < dict->items.size(); k += 2)
    n += dict->items[k]->kind == Kind::String && dict->items[k + 1]->kind == Kind::Tensor;
  return n;
}

std::string key_list(const Value* dict) {
  std::string out;
  size_t shown = 0;
  for (size_t k = 0; k < dict->items.size(); k += 2) {
    if (shown == 10) {
      out += ", ...";
      break;
    }
    const Value* key = dict->items[k];
    out += (shown ? ", " : "") + (key->kind == Kind::String ? "'" + key->s + "'" : std::string(kind_name(key->kind))) +
           " (" + kind_name(dict->items[k + 1]->kind) + ")";
    ++shown;
  }
  return out.empty() ? "none" : out;
}

// Reads the start of a file that is not a ZIP archive, to say what it is.
std::string not_zip_reason(const std::string& path) {
  unsigned char head[512] = {};
  ssize_t r = -1;
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return std::string("cannot open for reading: ") + std::strerror(errno);
  do {
    r = ::pread(fd, head, sizeof head, 0);
  } while (r < 0 && errno == EINTR);
  ::close(fd);
  if (r < 0) return std::string("read failed: ") + std::strerror(errno);
  // A pickled number other than the legacy magic (load_torch_file reads files starting with it).
  if (r >= 4 && head[0] == 0x80 && head[2] == 0x8a && head[3] == 0x0a)
    return "a pickle starting with a 10-byte number that is not torch.save's legacy magic number: not a PyTorch "
           "checkpoint (or a damaged legacy one)";
  if (r >= 262 && std::memcmp(head + 257, "ustar", 5) == 0)
    return "a tar archive (the format of PyTorch < 0.4), which oodkit does not read: re-save it with a current "
           "PyTorch or convert it to safetensors";
  if (r > 0 && head[0] == 0x80)
    return "a bare pickle, not a torch.save ZIP archive; oodkit reads only torch.save's default (ZIP) format";
  return "not a PyTorch checkpoint (torch.save writes a ZIP archive, starting with \"PK\\x03\\x04\")";
}

// The state dict in `root` (the top-level dict, or the one dict under "state_dict", ...), its tensors
// materialised in the dict's order. `read(storage)` gives a storage's bytes (numel * type size);
// `budget_left` bounds what is read and made from the file (kBudgetFactor times its size).
NamedTensors state_dict_tensors(const std::string& prefix, const Value* root, const Unpickler& u,
                                uint64_t budget_left,
                                const std::function<std::vector<uint8_t>(const StorageRef&, uint64_t&)>& read) {
  OODKIT_CHECK(root->kind == Kind::Dict, prefix, "holds a ", kind_name(root->kind),
               ", not a state dict (a dict of tensors)");
  const Value* dict = root;
  std::string chosen;
  for (const char* key : {"state_dict", "model_state_dict", "model", "net"}) {
    const Value* v = dict_get(root, key);
    if (!v || v->kind != Kind::Dict) continue;
    OODKIT_CHECK(chosen.empty(), prefix, "holds state dicts under both '", chosen, "' and '", key,
                 "'; load it in PyTorch and save the one you want (torch.save(ckpt['", chosen, "'], path))");
    chosen = key;
    dict = v;
  }
  OODKIT_CHECK(count_tensors(dict) > 0, prefix, "holds no tensors",
               chosen.empty() ? std::string(" at its top level") : " under '" + chosen + "'",
               " (entries: ", key_list(dict), ")",
               chosen.empty() ? "; a checkpoint's state dict is read from the top-level dict or from its 'state_dict', "
                                "'model_state_dict', 'model' or 'net' entry"
                              : "");

  // How many returned tensors use each storage: a storage's bytes are dropped after its last one.
  std::vector<size_t> uses(u.storages.size(), 0);
  for (size_t k = 0; k < dict->items.size(); k += 2)
    if (dict->items[k]->kind == Kind::String && dict->items[k + 1]->kind == Kind::Tensor)
      ++uses[u.tensors[size_t(dict->items[k + 1]->i)].storage];
  std::map<size_t, std::vector<uint8_t>> loaded;
  NamedTensors out;
  for (size_t k = 0; k < dict->items.size(); k += 2) {
    const Value* key = dict->items[k];
    const Value* value = dict->items[k + 1];
    if (key->kind != Kind::String || value->kind != Kind::Tensor) continue;
    const TensorRef& t = u.tensors[size_t(value->i)];
    const StorageRef& s = u.storages[t.storage];
    auto it = loaded.find(t.storage);
    if (it == loaded.end()) {
      OODKIT_CHECK(s.type->supported, prefix, "tensor '", key->s, "' has dtype ", s.type->torch_dtype, " (torch.",
                   s.type->name, "), which oodkit does not read (float32, float64, float16, bfloat16, int64, int32, "
                   "uint8, bool)");
      it = loaded.emplace(t.storage, read(s, budget_left)).first;
    }
    out.emplace_back(key->s, materialise(prefix, key->s, t, s, it->second.data(), budget_left));
    if (--uses[t.storage] == 0) loaded.erase(it);
  }
  return out;
}

uint64_t budget_for(uint64_t file_size) {
  return file_size > UINT64_MAX / kBudgetFactor ? UINT64_MAX : file_size * kBudgetFactor;
}

// torch.save's legacy layout: five pickles (the magic number, the protocol version 1001, a dict of
// system information, the object, the list of storage keys), then each storage of that list in its
// order as an 8-byte little-endian element count and its raw bytes.
// The magic number 0x1950a86a20f9469cfc6c as LONG1's little-endian bytes.
const uint8_t kLegacyMagic[] = {0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19};

// The length of the first pickle of `n` bytes at `p` when it is the legacy magic number (PROTO,
// with protocol 4 or 5 a FRAME, LONG1 of the 10 magic bytes, STOP), else 0.
size_t legacy_magic_length(const uint8_t* p, size_t n) {
  size_t i = 0;
  if (n < 2 || p[0] != 0x80) return 0;
  i = 2;
  if (n > i && p[i] == 0x95) i += 9;  // FRAME and its 8-byte length
  if (n < i + 2 + sizeof kLegacyMagic + 1 || p[i] != 0x8a || p[i + 1] != sizeof kLegacyMagic) return 0;
  i += 2;
  if (std::memcmp(p + i, kLegacyMagic, sizeof kLegacyMagic) != 0) return 0;
  i += sizeof kLegacyMagic;
  return p[i] == '.' ? i + 1 : 0;
}

bool has_legacy_magic(const std::string& path) {
  uint8_t head[32] = {};
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  if (fd < 0) return false;
  ssize_t r;
  do {
    r = ::pread(fd, head, sizeof head, 0);
  } while (r < 0 && errno == EINTR);
  ::close(fd);
  return r > 0 && legacy_magic_length(head, size_t(r)) > 0;
}

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& prefix) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd < 0 && errno == EINTR);
  OODKIT_CHECK(fd >= 0, prefix, "cannot open for reading: ", std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  while (true) {
    const ssize_t r = ::read(fd, buf, sizeof buf);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      const int e = errno;
      ::close(fd);
      OODKIT_FAIL(prefix, "read failed: ", std::strerror(e));
    }
    if (r == 0) break;
    bytes.insert(bytes.end(), buf, buf + r);
  }
  ::close(fd);
  return bytes;
}

NamedTensors load_legacy(const std::string& path, const std::string& prefix) {
  const std::vector<uint8_t> bytes = read_whole_file(path, prefix);
  size_t pos = legacy_magic_length(bytes.data(), bytes.size());
  OODKIT_CHECK(pos > 0, prefix, "the legacy magic number is gone (the file changed while it was read?)");
  // One pickle at `pos`, read by `u`; pos moves past it.
  const auto next = [&](const char* what) {
    return std::make_unique<Unpickler>(prefix, bytes.data() + pos, bytes.size() - pos, nullptr, "", what);
  };
  std::unique_ptr<Unpickler> version = next("the protocol-version pickle");
  const Value* v = version->run();
  OODKIT_CHECK(v->kind == Kind::Int && v->i == 1001, prefix, "legacy protocol version ",
               v->kind == Kind::Int ? std::to_string(v->i) : std::string("(a ") + kind_name(v->kind) + ")",
               ", oodkit reads 1001 (damaged file?)");
  pos += version->end();
  std::unique_ptr<Unpickler> sys_info = next("the system-information pickle");
  const Value* info = sys_info->run();
  OODKIT_CHECK(info->kind == Kind::Dict, prefix, "the system information is a ", kind_name(info->kind),
               ", not a dict (damaged file?)");
  const Value* little = dict_get(info, "little_endian");
  OODKIT_CHECK(little && little->kind == Kind::Bool && little->i == 1, prefix,
               "saved on a big-endian machine (little_endian is not True): only little-endian checkpoints are read "
               "(re-save it on a little-endian machine)");
  pos += sys_info->end();
  Unpickler u(prefix, bytes.data() + pos, bytes.size() - pos, nullptr, "", "the object pickle");
  const Value* root = u.run();
  pos += u.end();
  std::unique_ptr<Unpickler> key_pickle = next("the storage-key pickle");
  const Value* keys = key_pickle->run();
  pos += key_pickle->end();
  OODKIT_CHECK(keys->kind == Kind::List, prefix, "the storage keys are a ", kind_name(keys->kind),
               ", not a list (damaged file?)");
  // Each storage in the key list's order: its element count, then its bytes.
  std::vector<bool> placed(u.storages.size(), false);
  for (const Value* key : keys->items) {
    OODKIT_CHECK(key->kind == Kind::String, prefix, "a storage key is a ", kind_name(key->kind), ", not a str");
    size_t si = 0;
    while (si < u.storages.size() && u.storages[si].key != key->s) ++si;
    OODKIT_CHECK(si < u.storages.size(), prefix, "the key list names storage '", key->s,
                 "', which the object pickle does not use (damaged file)");
    OODKIT_CHECK(!placed[si], prefix, "the key list names storage '", key->s, "' twice (damaged file)");
    StorageRef& s = u.storages[si];
    OODKIT_CHECK(bytes.size() - pos >= 8, prefix, "storage '", s.key, "' has no size: the file ends at byte ", pos,
                 " (truncated?)");
    uint64_t numel = 0;
    for (size_t k = 8; k-- > 0;) numel = (numel << 8) | bytes[pos + k];
    OODKIT_CHECK(numel == s.numel, prefix, "storage '", s.key, "' holds ", numel, " elements where the pickle says ",
                 s.numel, " (damaged file)");
    uint64_t nbytes = 0;
    OODKIT_CHECK(!__builtin_mul_overflow(numel, uint64_t(s.type->size), &nbytes) && nbytes <= bytes.size() - pos - 8,
                 prefix, "storage '", s.key, "' (torch.", s.type->name, " of ", numel, " elements) runs past the end "
                 "of the file (truncated?)");
    s.file_offset = pos + 8;
    pos += 8 + size_t(nbytes);
    placed[si] = true;
  }
  for (size_t si = 0; si < u.storages.size(); ++si)
    OODKIT_CHECK(placed[si], prefix, "storage '", u.storages[si].key,
                 "' is used by the object pickle but missing from the key list (damaged file)");
  return state_dict_tensors(prefix, root, u, budget_for(bytes.size()), [&](const StorageRef& s, uint64_t& budget) {
    const uint64_t nbytes = s.numel * s.type->size;  // checked against the file above
    OODKIT_CHECK(nbytes <= budget, prefix, "storage '", s.key, "' of ", nbytes, " bytes would bring the data read past ",
                 kBudgetFactor, " times the file's size (damaged or hostile file)");
    budget -= nbytes;
    return std::vector<uint8_t>(bytes.begin() + std::ptrdiff_t(s.file_offset),
                                bytes.begin() + std::ptrdiff_t(s.file_offset + nbytes));
  });
}

}  // namespace

bool is_torch_file(const std::string& path) { return has_zip_magic(path) || has_legacy_magic(path); }

NamedTensors load_torch_file(const std::string& path) {
  const std::string prefix = "PyTorch file '" + path + "': ";
  if (!has_zip_magic(path)) {
    if (has_legacy_magic(path)) return load_legacy(path, prefix);
    OODKIT_FAIL(prefix, not_zip_reason(path));
  }
  const ZipReader zip(path, "PyTorch file");
  OODKIT_CHECK(!zip.entries().empty(), prefix, "the ZIP archive is empty");
  // The archive's folder: torch.save puts every record under one, named after the file (PyTorch
  // < 2.x) or "archive"; PyTorch's reader takes it from the first entry.
  const std::string& first = zip.entries().front().name;
  const size_t slash = first.find('/');
  OODKIT_CHECK(slash != std::string::npos && slash > 0, prefix, "entry '", first,
               "' is not inside a folder: not a torch.save archive");
  const std::string archive = first.substr(0, slash);
  // TorchScript (torch.jit.save) archives have a data.pkl too, pickling the scripted module's class.
  const bool script = zip.find(archive + "/constants.pkl") != nullptr ||
                      std::any_of(zip.entries().begin(), zip.entries().end(),
                                  [&](const ZipEntry& e) { return e.name.rfind(archive + "/code/", 0) == 0; });
  OODKIT_CHECK(!script, prefix, "a TorchScript archive (torch.jit.save), which oodkit does not read: save the "
               "model's state_dict with torch.save(model.state_dict(), path)");
  const ZipEntry* pkl = zip.find(archive + "/data.pkl");
  OODKIT_CHECK(pkl != nullptr, prefix, "no '", archive, "/data.pkl' in the ZIP archive: not a torch.save checkpoint");
  if (const ZipEntry* bo = zip.find(archive + "/byteorder")) {
    OODKIT_CHECK(bo->size <= 16, prefix, "byteorder entry of ", bo->size, " bytes (damaged file)");
    const std::vector<uint8_t> b = zip.read(*bo);
    const std::string order(b.begin(), b.end());
    OODKIT_CHECK(order == "little", prefix, "byte order '", order,
                 "': only little-endian checkpoints are read (re-save it on a little-endian machine)");
  }
  const std::vector<uint8_t> pickle = zip.read(*pkl);

  Unpickler u(prefix, pickle.data(), pickle.size(), &zip, archive);
  const Value* root = u.run();
  return state_dict_tensors(prefix, root, u, budget_for(zip.file_size()), [&](const StorageRef& s, uint64_t& budget) {
    OODKIT_CHECK(s.entry->size <= budget, prefix, "storage '", s.key, "' of ", s.entry->size,
                 " bytes would bring the data read past ", kBudgetFactor,
                 " times the file's size (overlapping ZIP entries? damaged or hostile file)");
    budget -= s.entry->size;
    return zip.read(*s.entry);
  });
}

}  // namespace oodkit
