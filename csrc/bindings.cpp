// Python bindings of the compiled core: the only file that knows pybind11.
//
// Each binding checks and converts its arguments (one clear error per bad input, saying how to
// fix it), releases the GIL, calls one core method, and converts the result. Conversion rules:
//   * vectors and queries must be C-contiguous float32 arrays (no silent narrowing or copies of
//     the bulk data); 1-D integer and float64 arguments (ids, tags, Q values, rewards) accept any
//     dtype that widens to them losslessly and any strides (they are copied).
//   * lists, tuples and other array-likes are converted with numpy (kinds must fit).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>
#include <pybind11/stl/filesystem.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "errors.h"
#include "experience_index.h"
#include "simd.h"

namespace py = pybind11;
using evokernel::ExperienceIndex;

namespace {

enum class Want { Float32, Float64, Int64, UInt32 };

const char* dtype_name(Want want) {
  switch (want) {
    case Want::Float32:
      return "float32";
    case Want::Float64:
      return "float64";
    case Want::Int64:
      return "int64";
    case Want::UInt32:
      return "uint32";
  }
  return "?";
}

py::module_& numpy() {
  // Deliberately leaked: a static Python object must not be released after interpreter exit.
  static py::module_* np = new py::module_(py::module_::import("numpy"));
  return *np;
}

std::string describe(const py::array& a) {
  std::string shape = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(a.shape(i));
  }
  if (a.ndim() == 1) shape += ",";
  shape += ")";
  return std::string(py::str(a.dtype())) + " array of shape " + shape;
}

// What `name` must be, e.g. "a C-contiguous float32 array of shape (n, 256)".
struct Spec {
  const char* name;
  Want want;
  std::string shape;  // "(n, 256)", "(256,)", "(n,)"

  std::string must() const {
    return std::string(name) + " must be a C-contiguous " + dtype_name(want) + " array of shape " +
           shape;
  }
  std::string fix() const {
    return "; pass np.ascontiguousarray(" + std::string(name) + ", dtype=np." + dtype_name(want) +
           ")";
  }
  [[noreturn]] void type_error(const std::string& got) const {
    throw py::type_error(must() + ", got " + got + fix());
  }
  [[noreturn]] void value_error(const std::string& got) const {
    throw py::value_error(must() + ", got " + got + fix());
  }
};

bool is_dtype(const py::array& a, Want want) {
  switch (want) {
    case Want::Float32:
      return py::isinstance<py::array_t<float>>(a);
    case Want::Float64:
      return py::isinstance<py::array_t<double>>(a);
    case Want::Int64:
      return py::isinstance<py::array_t<std::int64_t>>(a);
    case Want::UInt32:
      return py::isinstance<py::array_t<std::uint32_t>>(a);
  }
  return false;
}

// Returns a C-contiguous array of the wanted dtype, or throws TypeError/ValueError.
py::array as_array(py::handle obj, const Spec& spec) {
  const bool given_array = py::isinstance<py::array>(obj);
  py::array a;
  if (given_array) {
    a = py::reinterpret_borrow<py::array>(obj);
  } else {
    try {
      a = numpy().attr("asarray")(obj);
    } catch (py::error_already_set&) {
      spec.type_error("an object numpy cannot convert (" +
                      std::string(py::str(py::type::handle_of(obj).attr("__name__"))) + ")");
    }
  }
  if (given_array && !(a.flags() & py::array::c_style)) {
    // Vectors are the bulk data: the caller makes them contiguous, knowingly. Small 1-D
    // arguments (ids, tags, Q values, rewards) are copied.
    if (spec.want == Want::Float32) spec.value_error("a non-contiguous " + describe(a));
    a = numpy().attr("ascontiguousarray")(a);
  }
  if (is_dtype(a, spec.want)) return a;
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const py::ssize_t size = dt.itemsize();
  const bool native = py::str(dt.attr("byteorder")).cast<std::string>() != ">";
  bool ok = false;
  switch (spec.want) {
    case Want::Float32:  // exact for arrays; lists of numbers are converted
      ok = !given_array && (kind == 'f' || kind == 'i' || kind == 'u');
      break;
    case Want::Float64:
      ok = (kind == 'f' && size <= 8) || ((kind == 'i' || kind == 'u') && size <= 4);
      break;
    case Want::Int64:
    case Want::UInt32:
      ok = kind == 'i' || (kind == 'u' && size <= 4);
      break;
  }
  if (!given_array && a.size() == 0) ok = true;  // [] has numpy's default dtype, float64
  if (!ok || !native) spec.type_error("a " + describe(a));
  if (spec.want == Want::UInt32) {
    py::array wide = a.attr("astype")(numpy().attr("int64"));
    const auto* v = static_cast<const std::int64_t*>(wide.data());
    for (py::ssize_t i = 0; i < wide.size(); ++i) {
      if (v[i] < 0 || v[i] > std::numeric_limits<std::uint32_t>::max()) {
        throw py::value_error(std::string(spec.name) + " must hold values in [0, 2**32), got " +
                              std::to_string(v[i]));
      }
    }
    return wide.attr("astype")(numpy().attr("uint32"));
  }
  const char* target = spec.want == Want::Float32   ? "float32"
                       : spec.want == Want::Float64 ? "float64"
                                                    : "int64";
  return a.attr("astype")(numpy().attr(target));
}

// A 1-D array of length n (n < 0: any length).
py::array vector_arg(py::handle obj, const char* name, Want want, py::ssize_t n) {
  const Spec spec{name, want, n < 0 ? "(n,)" : "(" + std::to_string(n) + ",)"};
  py::array a = as_array(obj, spec);
  if (a.ndim() != 1 || (n >= 0 && a.shape(0) != n)) spec.value_error("a " + describe(a));
  return a;
}

// float32 rows of width dim: accepts (dim,) when `one` and (n, dim) when `many`.
py::array rows_arg(py::handle obj, const char* name, std::size_t dim, bool one, bool many) {
  const std::string d = std::to_string(dim);
  std::string shape = "(" + d + ",)";
  if (many) shape = one ? shape + " or (n, " + d + ")" : "(n, " + d + ")";
  const Spec spec{name, Want::Float32, shape};
  py::array a = as_array(obj, spec);
  const bool ok1 = one && a.ndim() == 1 && a.shape(0) == static_cast<py::ssize_t>(dim);
  const bool ok2 = many && a.ndim() == 2 && a.shape(1) == static_cast<py::ssize_t>(dim);
  if (!ok1 && !ok2) spec.value_error("a " + describe(a));
  return a;
}

template <typename T>
const T* ptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

std::uint32_t u32_arg(std::int64_t value, const char* name) {
  if (value < 0 || value > std::numeric_limits<std::uint32_t>::max()) {
    throw py::value_error(std::string(name) + " must be in [0, 2**32), got " +
                          std::to_string(value));
  }
  return static_cast<std::uint32_t>(value);
}

std::size_t count_arg(std::int64_t value, const char* name) {
  if (value < 0) {
    throw py::value_error(std::string(name) + " must be >= 0, got " + std::to_string(value));
  }
  return static_cast<std::size_t>(value);
}

// Hands a std::vector to numpy without copying.
template <typename T>
py::array_t<T> to_numpy(std::vector<T>&& v) {
  auto* heap = new std::vector<T>(std::move(v));
  py::capsule owner(heap, [](void* p) { delete static_cast<std::vector<T>*>(p); });
  return py::array_t<T>({static_cast<py::ssize_t>(heap->size())}, heap->data(), owner);
}

std::string path_str(const std::filesystem::path& p) { return p.string(); }

}  // namespace

PYBIND11_MODULE(_core, m, py::mod_gil_not_used()) {
  m.doc() =
      "Compiled core of EvoKernel's value-driven memory: ExperienceIndex (embeddings, tags, "
      "per-stage Q values and reward statistics).";

  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const evokernel::KeyError& e) {
      PyErr_SetString(PyExc_KeyError, e.what());
    } catch (const evokernel::FileError& e) {
      errno = e.error_code();
      PyErr_SetFromErrnoWithFilename(PyExc_OSError, e.path().c_str());
    }
  });

  m.attr("DRAFT") = evokernel::kDraft;
  m.attr("REFINE") = evokernel::kRefine;

  namespace simd = evokernel::simd;
  m.def(
      "simd_level", [] { return std::string(simd::active().name); },
      "Name of the SIMD kernels in use: 'avx512', 'avx2', 'neon' or 'scalar'.");
  m.def(
      "simd_levels",
      [] {
        std::vector<std::string> names;
        for (simd::Level l : {simd::Level::Scalar, simd::Level::Neon, simd::Level::Avx2,
                              simd::Level::Avx512}) {
          if (simd::kernels_for(l) != nullptr) names.push_back(simd::level_name(l));
        }
        return names;
      },
      "SIMD levels this build can run on this CPU, narrowest first.");
  m.def(
      "_set_simd_level",
      [](const std::string& name) {
        simd::Level level;
        if (!simd::parse_level(name.c_str(), &level) || !simd::set_active(level)) {
          throw py::value_error("SIMD level '" + name +
                                "' is not available here; see evokernel._core.simd_levels()");
        }
        return std::string(simd::active().name);
      },
      py::arg("name"),
      "Testing aid: switch every index to another SIMD level (process-wide). Returns it.");

  if (const char* env = std::getenv("EVOKERNEL_SIMD")) {
    simd::Level level;
    const std::string value(env);
    if (!value.empty() && value != "auto" &&
        (!simd::parse_level(env, &level) || simd::kernels_for(level) == nullptr)) {
      const std::string msg = "EVOKERNEL_SIMD=" + value +
                              " is not a SIMD level this build can run here (use auto, scalar, "
                              "avx2, avx512 or neon); using " +
                              simd::active().name;
      if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
    }
  }

  py::class_<ExperienceIndex> cls(m, "ExperienceIndex", R"doc(
Embeddings, tags, per-stage Q values and reward statistics of the experience memory.

Rows: an L2-normalised float32 (or fp16) embedding, an int64 id >= 0 chosen by the caller, a
uint32 tag (a row passes a filter when ``tag & tag_mask == tag_value``), and per stage
(DRAFT = 0, REFINE = 1) a Q value and a visit count.

Thread safety: every method may be called from any thread. Readers (search, select, get_*,
contains, ids, tag, vector, save, len) run in parallel; writers (add, update_vector, set_tag,
remove, set_q, update_q, normalize_reward, set_reward_stats) are exclusive. The GIL is released
while the index works.)doc");

  cls.def(py::init([](std::int64_t dim, bool fp16, double reward_beta, double reward_std_floor,
                      std::int64_t reward_warmup) {
            if (dim <= 0) throw py::value_error("dim must be >= 1, got " + std::to_string(dim));
            evokernel::IndexOptions o;
            o.dim = static_cast<std::size_t>(dim);
            o.fp16 = fp16;
            o.reward_beta = reward_beta;
            o.reward_std_floor = reward_std_floor;
            o.reward_warmup = reward_warmup;
            return std::make_unique<ExperienceIndex>(o);
          }),
          py::arg("dim"), py::arg("fp16") = false, py::arg("reward_beta") = 0.05,
          py::arg("reward_std_floor") = 0.1, py::arg("reward_warmup") = 8,
          "Empty index of `dim`-dimensional embeddings (stored as fp16 when `fp16`).");

  cls.def_property_readonly("dim", &ExperienceIndex::dim, "Embedding width.");
  cls.def_property_readonly("fp16", &ExperienceIndex::fp16, "Whether vectors are stored as fp16.");
  cls.def_property_readonly("reward_beta", &ExperienceIndex::reward_beta,
                            "EMA rate of the reward statistics.");
  cls.def_property_readonly("reward_std_floor", &ExperienceIndex::reward_std_floor,
                            "Smallest std the reward normalisation divides by.");
  cls.def_property_readonly("reward_warmup", &ExperienceIndex::reward_warmup,
                            "Rewards are returned raw until a stage has this many samples.");
  cls.def_property(
      "num_threads", &ExperienceIndex::num_threads,
      [](ExperienceIndex& self, std::int64_t t) {
        self.set_num_threads(count_arg(t, "num_threads"));
      },
      "Threads a large scan may use (0 = automatic: hardware threads, at most 8). "
      "Not saved with the index.");

  cls.def(
      "__len__",
      [](const ExperienceIndex& self) {
        py::gil_scoped_release nogil;
        return self.size();
      },
      "Number of rows. Reader.");
  cls.def(
      "__contains__",
      [](const ExperienceIndex& self, std::int64_t id) {
        py::gil_scoped_release nogil;
        return self.contains(id);
      },
      py::arg("id"), "Whether `id` is in the index. Reader.");
  cls.def(
      "contains",
      [](const ExperienceIndex& self, std::int64_t id) {
        py::gil_scoped_release nogil;
        return self.contains(id);
      },
      py::arg("id"), "Whether `id` is in the index. Reader.");
  cls.def("__repr__", [](const ExperienceIndex& self) {
    std::size_t n;
    {
      py::gil_scoped_release nogil;
      n = self.size();
    }
    return "ExperienceIndex(dim=" + std::to_string(self.dim()) +
           ", fp16=" + (self.fp16() ? "True" : "False") + ", size=" + std::to_string(n) + ")";
  });

  cls.def(
      "add",
      [](ExperienceIndex& self, py::handle ids, py::handle vectors, py::handle tags) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        const py::ssize_t n = id_arr.shape(0);
        py::array vec = rows_arg(vectors, "vectors", self.dim(), false, true);
        if (vec.shape(0) != n) {
          throw py::value_error("vectors has " + std::to_string(vec.shape(0)) +
                                " rows but ids has " + std::to_string(n) +
                                "; pass one vector per id");
        }
        py::object tag_arr;  // keeps a converted tag array alive
        const std::uint32_t* tag_ptr = nullptr;  // nullptr: every row gets `tag`
        std::uint32_t tag = 0;
        if (py::isinstance<py::int_>(tags)) {
          tag = u32_arg(tags.cast<std::int64_t>(), "tags");
        } else {
          py::array a = vector_arg(tags, "tags", Want::UInt32, n);
          tag_ptr = ptr<std::uint32_t>(a);
          tag_arr = std::move(a);
        }
        py::gil_scoped_release nogil;
        self.add(ptr<std::int64_t>(id_arr), ptr<float>(vec), tag_ptr, tag,
                 static_cast<std::size_t>(n));
      },
      py::arg("ids"), py::arg("vectors"), py::arg("tags") = 0,
      "Add rows: ids int64[n] (>= 0, new, unique), vectors float32[n, dim] (L2-normalised "
      "here), tags uint32[n] or one int for all. All or nothing. Writer.");

  cls.def(
      "update_vector",
      [](ExperienceIndex& self, std::int64_t id, py::handle vector) {
        py::array v = rows_arg(vector, "vector", self.dim(), true, false);
        py::gil_scoped_release nogil;
        self.update_vector(id, ptr<float>(v));
      },
      py::arg("id"), py::arg("vector"),
      "Replace the vector of `id` (KeyError when absent). Writer.");

  cls.def(
      "set_tag",
      [](ExperienceIndex& self, std::int64_t id, std::int64_t tag) {
        const std::uint32_t t = u32_arg(tag, "tag");
        py::gil_scoped_release nogil;
        self.set_tag(id, t);
      },
      py::arg("id"), py::arg("tag"), "Change the tag of `id` (KeyError when absent). Writer.");

  cls.def(
      "remove",
      [](ExperienceIndex& self, py::handle ids) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        py::gil_scoped_release nogil;
        return self.remove(ptr<std::int64_t>(id_arr), static_cast<std::size_t>(id_arr.shape(0)));
      },
      py::arg("ids"),
      "Remove rows (the last row moves into the hole); unknown ids are ignored. Returns the "
      "number removed. Writer.");

  cls.def(
      "ids",
      [](const ExperienceIndex& self) {
        std::vector<std::int64_t> out;
        {
          py::gil_scoped_release nogil;
          out = self.ids();
        }
        return to_numpy(std::move(out));
      },
      "All ids, int64[len], in row order (changes when rows are removed). Reader.");

  cls.def(
      "tag",
      [](const ExperienceIndex& self, std::int64_t id) {
        py::gil_scoped_release nogil;
        return self.tag(id);
      },
      py::arg("id"), "Tag of `id` (KeyError when absent). Reader.");

  cls.def(
      "vector",
      [](const ExperienceIndex& self, std::int64_t id) {
        std::vector<float> out;
        {
          py::gil_scoped_release nogil;
          out = self.vector(id);
        }
        return to_numpy(std::move(out));
      },
      py::arg("id"),
      "Stored vector of `id`, float32[dim]: normalised (and rounded to fp16 when the index "
      "stores fp16). KeyError when absent. Reader.");

  cls.def(
      "search",
      [](const ExperienceIndex& self, py::handle queries, std::int64_t k, std::int64_t tag_mask,
         std::int64_t tag_value) {
        py::array q = rows_arg(queries, "queries", self.dim(), true, true);
        const std::size_t kk = count_arg(k, "k");
        const std::uint32_t mask = u32_arg(tag_mask, "tag_mask");
        const std::uint32_t value = u32_arg(tag_value, "tag_value");
        const bool single = q.ndim() == 1;
        const py::ssize_t nq = single ? 1 : q.shape(0);
        std::vector<py::ssize_t> shape = single ? std::vector<py::ssize_t>{py::ssize_t(kk)}
                                                : std::vector<py::ssize_t>{nq, py::ssize_t(kk)};
        py::array_t<std::int64_t> ids(shape);
        py::array_t<float> sims(shape);
        std::int64_t* ids_out = ids.mutable_data();
        float* sims_out = sims.mutable_data();
        {
          py::gil_scoped_release nogil;
          self.search(ptr<float>(q), static_cast<std::size_t>(nq), kk, mask, value, ids_out,
                      sims_out);
        }
        return py::make_tuple(ids, sims);
      },
      py::arg("queries"), py::arg("k"), py::arg("tag_mask") = 0, py::arg("tag_value") = 0,
      R"doc(Exact top-k cosine search.

queries: float32[dim] or float32[b, dim] (normalised here; zero or non-finite -> ValueError).
Only rows with ``tag & tag_mask == tag_value`` are candidates. Returns (ids int64, sims float32),
shaped [k] or [b, k]: sim descending, ties by id ascending, padded with id -1 and sim -inf.
Reader; large scans use up to `num_threads` threads.)doc");

  cls.def(
      "select",
      [](const ExperienceIndex& self, py::handle query, std::int64_t n, int stage,
         double pool_factor, double w_sim, double w_q, double q_floor, double epsilon,
         const py::int_& seed, std::int64_t tag_mask, std::int64_t tag_value,
         py::handle exclude) {
        py::array q = rows_arg(query, "query", self.dim(), true, false);
        evokernel::SelectOptions o;
        o.n = count_arg(n, "n");
        o.stage = stage;
        o.pool_factor = pool_factor;
        o.w_sim = w_sim;
        o.w_q = w_q;
        o.q_floor = q_floor;
        o.epsilon = epsilon;
        o.seed = PyLong_AsUnsignedLongLongMask(seed.ptr());
        if (PyErr_Occurred()) throw py::error_already_set();
        o.tag_mask = u32_arg(tag_mask, "tag_mask");
        o.tag_value = u32_arg(tag_value, "tag_value");
        py::object keep_exclude;  // keeps a converted exclude array alive
        if (!exclude.is_none()) {
          py::array ex = vector_arg(exclude, "exclude", Want::Int64, -1);
          o.exclude = ptr<std::int64_t>(ex);
          o.n_exclude = static_cast<std::size_t>(ex.shape(0));
          keep_exclude = std::move(ex);
        }
        evokernel::SelectResult r;
        {
          py::gil_scoped_release nogil;
          r = self.select(ptr<float>(q), o);
        }
        return py::make_tuple(to_numpy(std::move(r.ids)), to_numpy(std::move(r.sims)),
                              to_numpy(std::move(r.scores)));
      },
      py::arg("query"), py::arg("n"), py::arg("stage"), py::kw_only(),
      py::arg("pool_factor") = 3.0, py::arg("w_sim") = 0.5, py::arg("w_q") = 0.5,
      py::arg("q_floor") = -0.8, py::arg("epsilon") = 0.1, py::arg("seed") = 0,
      py::arg("tag_mask") = 0, py::arg("tag_value") = 0, py::arg("exclude") = py::none(),
      R"doc(Value-driven retrieval of up to n rows for one query float32[dim].

1. candidates: rows passing the tag filter, minus `exclude` ids; sims = cosine with the query.
2. pool: top ceil(pool_factor * n) candidates by sim (ties: id asc).
3. score = w_sim * z(sim) + w_q * z(Q[stage]), z-scores over the pool (population std;
   all values equal -> 0).
4. rows with Q < q_floor are dropped, lowest Q first (ties: id asc), while more than n remain.
   (w_q = 0 does not disable this step; pass q_floor=-inf for similarity-only retrieval.)
5. order by score desc (ties: sim desc, id asc); each of the n slots draws u from the seeded
   generator and takes a uniformly random remaining row when u < epsilon, else the best one.
Generator: SplitMix64 seeded with `seed` (mod 2**64), u = (next() >> 11) * 2**-53; the random
row is remaining[floor(u2 * len(remaining))] with a second draw u2.
Returns (ids int64[r], sims float32[r], scores float32[r]) in slot order, r = min(n, pool).
Reader.)doc");

  cls.def(
      "get_q",
      [](const ExperienceIndex& self, py::handle ids, int stage) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        py::array_t<double> out(id_arr.shape(0));
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          self.get_q(ptr<std::int64_t>(id_arr), static_cast<std::size_t>(id_arr.shape(0)), stage,
                     o);
        }
        return out;
      },
      py::arg("ids"), py::arg("stage"),
      "Q values float64[n] of `ids` for `stage` (KeyError for an unknown id). Reader.");

  cls.def(
      "get_visits",
      [](const ExperienceIndex& self, py::handle ids, int stage) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        py::array_t<std::int64_t> out(id_arr.shape(0));
        std::int64_t* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          self.get_visits(ptr<std::int64_t>(id_arr), static_cast<std::size_t>(id_arr.shape(0)),
                          stage, o);
        }
        return out;
      },
      py::arg("ids"), py::arg("stage"),
      "Visit counts int64[n] of `ids` for `stage` (KeyError for an unknown id). Reader.");

  cls.def(
      "set_q",
      [](ExperienceIndex& self, py::handle ids, int stage, py::handle q, py::handle visits) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        const py::ssize_t n = id_arr.shape(0);
        py::array q_arr = vector_arg(q, "q", Want::Float64, n);
        py::array v_arr = vector_arg(visits, "visits", Want::Int64, n);
        py::gil_scoped_release nogil;
        self.set_q(ptr<std::int64_t>(id_arr), static_cast<std::size_t>(n), stage,
                   ptr<double>(q_arr), ptr<std::int64_t>(v_arr));
      },
      py::arg("ids"), py::arg("stage"), py::arg("q"), py::arg("visits"),
      "Overwrite Q values float64[n] and visit counts int64[n] of `ids` for `stage` (used "
      "when rebuilding from the store). All or nothing. Writer.");

  cls.def(
      "update_q",
      [](ExperienceIndex& self, py::handle ids, int stage, py::handle rewards, double alpha) {
        py::array id_arr = vector_arg(ids, "ids", Want::Int64, -1);
        const py::ssize_t n = id_arr.shape(0);
        double scalar = 0.0;
        py::object keep_rewards;  // keeps a converted reward array alive
        const double* r_ptr = &scalar;
        std::size_t stride = 0;
        if (!py::isinstance<py::array>(rewards) && !py::isinstance<py::sequence>(rewards)) {
          scalar = py::float_(py::reinterpret_borrow<py::object>(rewards)).cast<double>();
        } else {
          py::array r_arr = vector_arg(rewards, "rewards", Want::Float64, n);
          r_ptr = ptr<double>(r_arr);
          stride = 1;
          keep_rewards = std::move(r_arr);
        }
        py::array_t<double> out(n);
        double* o = out.mutable_data();
        {
          py::gil_scoped_release nogil;
          self.update_q(ptr<std::int64_t>(id_arr), static_cast<std::size_t>(n), stage, r_ptr,
                        stride, alpha, o);
        }
        return out;
      },
      py::arg("ids"), py::arg("stage"), py::arg("rewards"), py::arg("alpha") = 0.2,
      "Monte-Carlo update Q <- Q + alpha * (r - Q), visits += 1, for each listed id in order "
      "(an id listed twice is updated twice). rewards: one float or float64[n]. Returns "
      "float64[n]: each id's Q right after its update. All or nothing. Writer.");

  cls.def(
      "normalize_reward",
      [](ExperienceIndex& self, int stage, double reward) {
        py::gil_scoped_release nogil;
        return self.normalize_reward(stage, reward);
      },
      py::arg("stage"), py::arg("r"),
      "Update the stage's running reward statistics with r (count += 1, beta_t = max(beta, "
      "1/count), EMA of r and r**2), then return r while count < reward_warmup, else "
      "(r - mean) / max(std, reward_std_floor). Writer.");

  cls.def(
      "reward_stats",
      [](const ExperienceIndex& self, int stage) {
        evokernel::RewardStats s;
        {
          py::gil_scoped_release nogil;
          s = self.reward_stats(stage);
        }
        return py::make_tuple(s.count, s.mean, s.var);
      },
      py::arg("stage"), "(count, mean, var) of the stage's reward statistics. Reader.");

  cls.def(
      "set_reward_stats",
      [](ExperienceIndex& self, int stage, std::int64_t count, double mean, double var) {
        py::gil_scoped_release nogil;
        self.set_reward_stats(stage, count, mean, var);
      },
      py::arg("stage"), py::arg("count"), py::arg("mean"), py::arg("var"),
      "Overwrite the stage's reward statistics. Writer.");

  cls.def(
      "save",
      [](const ExperienceIndex& self, const std::filesystem::path& path) {
        const std::string p = path_str(path);
        py::gil_scoped_release nogil;
        self.save(p);
      },
      py::arg("path"),
      "Write the index (vectors, ids, tags, Q values, visits, reward statistics and settings) "
      "to `path`, atomically through a temporary file. Reader (writers wait).");

  cls.def_static(
      "load",
      [](const std::filesystem::path& path) {
        const std::string p = path_str(path);
        py::gil_scoped_release nogil;
        return ExperienceIndex::load(p);
      },
      py::arg("path"),
      "Read an index saved by `save` (any supported format version). A file that is not an "
      "index, truncated or corrupted raises ValueError; a missing file raises "
      "FileNotFoundError.");

  cls.def(
      "_read_floor",
      [](const ExperienceIndex& self) {
        py::gil_scoped_release nogil;
        return self.read_floor();
      },
      "Benchmark aid: read every stored vector byte once with the scan's threads (the "
      "memory-read floor of a full scan); returns their float sum.");
  cls.def(
      "_scan_threads",
      [](const ExperienceIndex& self, std::int64_t nq, std::int64_t tag_mask,
         std::int64_t tag_value) {
        const std::size_t n = count_arg(nq, "nq");
        const std::uint32_t mask = u32_arg(tag_mask, "tag_mask");
        const std::uint32_t value = u32_arg(tag_value, "tag_value");
        py::gil_scoped_release nogil;
        return self.scan_threads(n, mask, value);
      },
      py::arg("nq") = 1, py::arg("tag_mask") = 0, py::arg("tag_value") = 0,
      "Diagnostic: the number of threads a scan of `nq` queries with this tag filter would use "
      "(sized from the rows that pass the filter). Reader.");
}
