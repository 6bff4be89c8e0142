"""Type stub of the compiled core (csrc/, bindings in csrc/bindings.cpp)."""

from os import PathLike

import numpy as np
import numpy.typing as npt

DRAFT: int  # = 0
REFINE: int  # = 1

_Ids = npt.ArrayLike  # int64[n] (any lossless integer dtype, or a list of ints)
_F64 = npt.ArrayLike  # float64[n] (float32 and small ints widen losslessly)

def simd_level() -> str:
    """Name of the SIMD kernels in use: 'avx512', 'avx2', 'neon' or 'scalar'."""

def simd_levels() -> list[str]:
    """SIMD levels this build can run on this CPU, narrowest first."""

def _set_simd_level(name: str) -> str:
    """Testing aid: switch every index to another SIMD level (process-wide)."""

class ExperienceIndex:
    """Embeddings, tags, per-stage Q values and reward statistics of the experience memory.

    Thread safety: every method may be called from any thread; readers run in parallel, writers
    are exclusive; the GIL is released while the index works.
    """

    def __init__(
        self,
        dim: int,
        fp16: bool = False,
        reward_beta: float = 0.05,
        reward_std_floor: float = 0.1,
        reward_warmup: int = 8,
    ) -> None: ...
    @property
    def dim(self) -> int: ...
    @property
    def fp16(self) -> bool: ...
    @property
    def reward_beta(self) -> float: ...
    @property
    def reward_std_floor(self) -> float: ...
    @property
    def reward_warmup(self) -> int: ...
    @property
    def num_threads(self) -> int:
        """Threads a large scan may use (0 = automatic); not saved with the index."""
    @num_threads.setter
    def num_threads(self, value: int) -> None: ...
    def __len__(self) -> int: ...
    def __contains__(self, id: int) -> bool: ...
    def contains(self, id: int) -> bool: ...
    def add(self, ids: _Ids, vectors: npt.NDArray[np.float32], tags: npt.ArrayLike | int = 0) -> None:
        """Add rows; vectors: C-contiguous float32[n, dim], L2-normalised on insert.

        Duplicate or existing ids, negative ids, zero or non-finite vectors -> ValueError.
        """
    def update_vector(self, id: int, vector: npt.NDArray[np.float32]) -> None:
        """Replace the vector of `id` (KeyError when absent)."""
    def set_tag(self, id: int, tag: int) -> None: ...
    def remove(self, ids: _Ids) -> int:
        """Remove rows (swap with the last row); unknown ids are ignored; returns the count."""
    def ids(self) -> npt.NDArray[np.int64]: ...
    def tag(self, id: int) -> int: ...
    def vector(self, id: int) -> npt.NDArray[np.float32]: ...
    def search(
        self, queries: npt.NDArray[np.float32], k: int, tag_mask: int = 0, tag_value: int = 0
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32]]:
        """Exact top-k cosine for float32[dim] -> ([k], [k]) or float32[b, dim] -> ([b, k], [b, k]).

        Sim descending, ties by id ascending; padded with id -1 and sim -inf.
        """
    def select(
        self,
        query: npt.NDArray[np.float32],
        n: int,
        stage: int,
        *,
        pool_factor: float = 3.0,
        w_sim: float = 0.5,
        w_q: float = 0.5,
        q_floor: float = -0.8,
        epsilon: float = 0.1,
        seed: int = 0,
        tag_mask: int = 0,
        tag_value: int = 0,
        exclude: _Ids | None = None,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The value-driven retrieval: (ids, sims, scores) of up to n rows, in slot order.

        Steps in docs/architecture.md. w_q = 0 still applies q_floor: pass q_floor=-inf for
        similarity-only retrieval. Epsilon slots use SplitMix64(seed), u = (next() >> 11) * 2**-53.
        """
    def get_q(self, ids: _Ids, stage: int) -> npt.NDArray[np.float64]: ...
    def get_visits(self, ids: _Ids, stage: int) -> npt.NDArray[np.int64]: ...
    def set_q(self, ids: _Ids, stage: int, q: _F64, visits: _Ids) -> None: ...
    def update_q(
        self, ids: _Ids, stage: int, rewards: float | _F64, alpha: float = 0.2
    ) -> npt.NDArray[np.float64]:
        """Q <- Q + alpha * (r - Q), visits += 1, per listed id in order; returns each new Q."""
    def normalize_reward(self, stage: int, r: float) -> float: ...
    def reward_stats(self, stage: int) -> tuple[int, float, float]:
        """(count, mean, var) of the stage's running reward statistics."""
    def set_reward_stats(self, stage: int, count: int, mean: float, var: float) -> None: ...
    def save(self, path: str | PathLike[str]) -> None: ...
    @staticmethod
    def load(path: str | PathLike[str]) -> ExperienceIndex:
        """Corrupt, truncated or foreign files raise ValueError; a missing file FileNotFoundError."""
    def _read_floor(self) -> float:
        """Benchmark aid: read every stored vector byte once (the memory-read floor)."""
