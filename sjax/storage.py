"""Saved shares: each party writes and reads only its own shares, with a checked header.

:func:`save` writes one party's shard of a pytree (a parameter tree, an optimizer state, a whole training
state) that mixes :class:`sjax.ArithShare`, :class:`sjax.BinShare` and public arrays. :func:`load` reads a
shard back, as a tree whose secret leaves are :class:`PartyShare` (that party's share alone). In simulation,
where every party's shares sit stacked in one process, :func:`load_all` reads every party's file and
reassembles the stacked shares, bit for bit; under the processes runner, :func:`place` puts each process's
loaded shard back on the runner's mesh.

File layout (version 1), all integers little-endian::

    b"SJAXSHR\\0"  magic (8 bytes)
    uint32        format version
    uint64        length of the header
    header        UTF-8 JSON: party, n_parties, frac_bits, and per leaf its path, kind ("arith", "bin"
                  or "public"), frac_bits, dtype, shape, offset and size in the payload; the tree's
                  structure (as JSON for dicts, lists, tuples and None; as text for other nodes)
    payload       the leaves' bytes, in the order of the header
    digest        32 bytes: SHA-256 of everything above (HMAC-SHA256 when a ``hmac_key`` is given)

Nothing is unpickled: a file only ever yields arrays of the numeric dtypes listed in the header and the
containers above. A tree with other nodes (flax ``FrozenDict``, optax states, dataclasses) is restored into
the structure of a template, ``load(path, like=tree)``, after its structure is compared with the file's.

Security: a file holds one party's shares, which alone are uniform and reveal nothing about the secrets;
but two files of different parties of the same tree reveal the secret, so each party must keep its own
files private (storing shares of every party in one place, as :func:`save` in simulation can, is for
testing). The SHA-256 digest detects accidental corruption, not tampering: anyone who can write the file
can recompute it. Pass a secret ``hmac_key`` to :func:`save` and :func:`load` to detect tampering too.
Public leaves are stored as they are.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import os
import struct
import sys
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from sjax import ring
from sjax.shares import ArithShare, BinShare

__all__ = ["save", "load", "load_all", "assemble", "place", "PartyShare", "FORMAT_VERSION"]

MAGIC = b"SJAXSHR\x00"
FORMAT_VERSION = 1
_DIGEST_BYTES = 32
_PREFIX = struct.Struct("<8sIQ")
# Header sizes beyond this are not believed (a corrupted length field must not allocate gigabytes).
_MAX_HEADER = 1 << 26
_DTYPES = {
    name: jnp.dtype(name)
    for name in (
        "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
        "float16", "bfloat16", "float32", "float64",
    )
}  # fmt: skip


@dataclasses.dataclass(frozen=True, eq=False)
class PartyShare:
    """One party's share of one secret, as :func:`load` returns it.

    Attributes:
        share: ``uint64[*shape]``, this party's share (the row ``party`` of the stacked shares).
        kind: ``"arith"`` (a row of an :class:`sjax.ArithShare`) or ``"bin"`` (of a :class:`sjax.BinShare`).
        frac_bits: fractional bits of an arithmetic share (``None`` for a binary one).
        party: the index of the party that holds it.
        n_parties: the number of parties the secret is shared among.
    """

    share: Any
    kind: str
    frac_bits: int | None
    party: int
    n_parties: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.share.shape)


jax.tree_util.register_dataclass(
    PartyShare, data_fields=["share"], meta_fields=["kind", "frac_bits", "party", "n_parties"]
)


def _as_share(leaf: PartyShare, shares: jax.Array) -> ArithShare | BinShare:
    """Stacked shares (every party's, or a runner's placed array) as the share type ``leaf`` is a row of."""
    return ArithShare(shares, frac_bits=leaf.frac_bits) if leaf.kind == "arith" else BinShare(shares)


def _is_share(x: Any) -> bool:
    return isinstance(x, (ArithShare, BinShare, PartyShare))


# -- tree structure as JSON ------------------------------------------------------------------------


def _structure(tree: Any) -> Any:
    """The tree's containers as JSON, or ``None`` when it has a node other than dict/list/tuple/None."""
    if _is_share(tree):
        return "*"
    if tree is None:
        return {"none": True}
    if type(tree) in (list, tuple):
        children = [_structure(c) for c in tree]
        if any(c is None for c in children):
            return None
        return {type(tree).__name__: children}
    if type(tree) is dict:
        if not all(isinstance(k, str) for k in tree):
            return None
        # Sorted, as jax flattens dicts.
        children = [[k, _structure(tree[k])] for k in sorted(tree)]
        if any(c is None for _, c in children):
            return None
        return {"dict": children}
    if jax.tree_util.all_leaves([tree]):
        return "*"
    return None


def _rebuild(structure: Any, leaves: list[Any]) -> Any:
    """Inverse of :func:`_structure`, consuming ``leaves`` in order."""
    if structure == "*":
        return leaves.pop(0)
    if not isinstance(structure, dict) or len(structure) != 1:
        raise ValueError("corrupted sjax share file: malformed tree structure in the header")
    ((kind, body),) = structure.items()
    if kind == "none":
        return None
    if kind in ("list", "tuple") and isinstance(body, list):
        children = [_rebuild(c, leaves) for c in body]
        return children if kind == "list" else tuple(children)
    if kind == "dict" and isinstance(body, list):
        return {str(k): _rebuild(c, leaves) for k, c in body}
    raise ValueError("corrupted sjax share file: malformed tree structure in the header")


# -- saving ----------------------------------------------------------------------------------------


def _check_index(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{what} must be an int, got {type(value).__name__}")
    return int(value)


def _row(shares: jax.Array, party: int | None, where: str) -> tuple[np.ndarray, int]:
    """Party ``party``'s row of stacked shares, or the one row this process can address."""
    if isinstance(shares, jax.core.Tracer):
        raise TypeError(f"sjax.save: leaf {where} is traced; save concrete shares, outside jax.jit")
    if getattr(shares, "is_fully_addressable", True):
        if party is None:
            raise ValueError(
                "sjax.save: every party's shares are in this process (simulation); pass party=i to save "
                "party i's shares"
            )
        return np.asarray(shares[party]), party
    # Under the processes runner this process addresses one row: its own (the dealer's slot for the dealer).
    rows = {shard.index[0].start or 0 for shard in shares.addressable_shards}
    if len(rows) != 1:
        raise ValueError(f"sjax.save: this process holds the shares of parties {sorted(rows)}; pass party=i")
    (row,) = rows
    if party is not None and party != row:
        raise ValueError(f"sjax.save: leaf {where} is party {row}'s share here, not party {party}'s")
    return np.asarray(shares.addressable_shards[0].data)[0], row


def _n_parties_of(leaves: Sequence[Any]) -> int | None:
    counts = {leaf.n_parties for leaf in leaves if isinstance(leaf, (ArithShare, BinShare))}
    if len(counts) > 1:
        raise ValueError(f"sjax.save: the tree mixes shares of {sorted(counts)} parties")
    return counts.pop() if counts else None


def _public(leaf: Any, where: str) -> np.ndarray:
    if isinstance(leaf, jax.core.Tracer):
        raise TypeError(f"sjax.save: leaf {where} is traced; save concrete values, outside jax.jit")
    if isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
        raise TypeError(
            f"sjax.save: leaf {where} is a PRNG key; save jax.random.key_data(key) and wrap it again on load"
        )
    try:
        array = np.asarray(leaf)
    except (TypeError, ValueError):
        raise TypeError(f"sjax.save: leaf {where} is a {type(leaf).__name__}, not an array or a share") from None
    if array.dtype.name not in _DTYPES:
        raise TypeError(f"sjax.save: leaf {where} has dtype {array.dtype}, which share files do not store")
    return array


def save(path: str | os.PathLike, tree: Any, *, party: int | None = None, hmac_key: bytes | None = None) -> None:
    """Writes one party's shares of ``tree`` (and its public leaves) to ``path``.

    ``tree`` is a pytree whose leaves are :class:`sjax.ArithShare`, :class:`sjax.BinShare`, public arrays
    and numbers. For every share only the row of party ``party`` is written, so the file reveals nothing
    about the secrets; public leaves are written as they are. The file is written to a temporary name and
    renamed, so a crash never leaves a half-written file under ``path``.

    Args:
        path: the file to write (replaced if it exists).
        tree: the pytree to save, with concrete (not traced) leaves.
        party: the party whose shares to write. Required in simulation, where this process holds every
            party's shares; under a runner where the process holds one party's shard it may be omitted (the
            dealer's process then writes its slot's row, all zeros, so that it can :func:`place` it too).
        hmac_key: if given, the file ends with an HMAC-SHA256 under this key instead of a plain SHA-256,
            and :func:`load` must be given the same key.

    Raises:
        TypeError: a leaf is neither a share nor a numeric array (a PRNG key, a string ...), or is traced.
        ValueError: ``party`` is missing in simulation or out of range, or the shares disagree on
            ``n_parties``.
    """
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_share)
    if party is not None:
        party = _check_index(party, "party")
    n_parties = _n_parties_of([leaf for _, leaf in flat])
    if party is not None and n_parties is not None and not 0 <= party < n_parties:
        raise ValueError(f"sjax.save: party {party} is out of range for shares of {n_parties} parties")
    entries, chunks, offset, frac_bits = [], [], 0, set()
    for path_, leaf in flat:
        where = jax.tree_util.keystr(path_) or "(root)"
        if isinstance(leaf, PartyShare):
            raise TypeError(
                f"sjax.save: leaf {where} is a PartyShare (one party's share, as sjax.load returns it); "
                "save the stacked shares, or the file you loaded it from"
            )
        if isinstance(leaf, (ArithShare, BinShare)):
            data, party = _row(leaf.shares, party, where)
            entry = {"kind": "arith" if isinstance(leaf, ArithShare) else "bin"}
            if isinstance(leaf, ArithShare):
                entry["frac_bits"] = leaf.frac_bits
                frac_bits.add(leaf.frac_bits)
        else:
            data = _public(leaf, where)
            entry = {"kind": "public"}
        raw = np.ascontiguousarray(data).tobytes()
        entry.update(path=where, dtype=data.dtype.name, shape=list(data.shape), offset=offset, nbytes=len(raw))
        entries.append(entry)
        chunks.append(raw)
        offset += len(raw)
    if party is None:
        raise ValueError("sjax.save: the tree holds no shares; pass party=i to say whose file this is")
    header = {
        "format": "sjax-shares",
        "version": FORMAT_VERSION,
        "party": party,
        "n_parties": n_parties,
        "frac_bits": frac_bits.pop() if len(frac_bits) == 1 else None,
        "treedef": str(treedef),
        "structure": _structure(tree),
        "leaves": entries,
        "digest": "hmac-sha256" if hmac_key is not None else "sha256",
    }
    blob = json.dumps(header, sort_keys=True).encode()
    body = _PREFIX.pack(MAGIC, FORMAT_VERSION, len(blob)) + blob + b"".join(chunks)
    path = os.fspath(path)
    temporary = f"{path}.tmp{os.getpid()}"
    with open(temporary, "wb") as file:
        file.write(body)
        file.write(_digest(body, hmac_key))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)


def _digest(data: bytes, hmac_key: bytes | None) -> bytes:
    if hmac_key is None:
        return hashlib.sha256(data).digest()
    if not isinstance(hmac_key, (bytes, bytearray)):
        raise TypeError(f"hmac_key must be bytes, got {type(hmac_key).__name__}")
    return hmac.new(bytes(hmac_key), data, hashlib.sha256).digest()


# -- loading ---------------------------------------------------------------------------------------


def _read(path: str | os.PathLike, hmac_key: bytes | None) -> tuple[dict, bytes]:
    """The header and payload of a share file, after every structural and integrity check."""
    name = os.fspath(path)
    with open(name, "rb") as file:
        data = file.read()
    if len(data) < _PREFIX.size or data[:8] != MAGIC:
        raise ValueError(f"{name} is not an sjax share file (no SJAXSHR magic at its start)")
    _, version, header_len = _PREFIX.unpack_from(data)
    if version != FORMAT_VERSION:
        raise ValueError(f"{name} is an sjax share file of format version {version}; this sjax reads {FORMAT_VERSION}")
    if header_len > _MAX_HEADER or len(data) < _PREFIX.size + header_len + _DIGEST_BYTES:
        raise ValueError(f"{name} is truncated or corrupted: its header runs past the end of the file")
    body, digest = data[:-_DIGEST_BYTES], data[-_DIGEST_BYTES:]
    try:
        header = json.loads(data[_PREFIX.size : _PREFIX.size + header_len])
    except (UnicodeDecodeError, json.JSONDecodeError):
        header = None
    if not isinstance(header, dict) or header.get("format") != "sjax-shares":
        raise ValueError(f"{name} is corrupted: its header is not valid")
    payload = body[_PREFIX.size + header_len :]
    try:
        expected = sum(int(entry["nbytes"]) for entry in header["leaves"])
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"{name} is corrupted: its header is not valid") from None
    if len(payload) < expected:
        raise ValueError(
            f"{name} is truncated: its header announces {expected} payload bytes, the file holds {len(payload)}"
        )
    if len(payload) > expected:
        raise ValueError(f"{name} is corrupted: {len(payload) - expected} bytes more than its header announces")
    keyed = header.get("digest") == "hmac-sha256"
    if keyed and hmac_key is None:
        raise ValueError(f"{name} is authenticated with an HMAC key: pass hmac_key= to load it")
    if not keyed and hmac_key is not None:
        raise ValueError(f"{name} has no HMAC (it was saved without hmac_key), but hmac_key was given")
    if not hmac.compare_digest(_digest(body, hmac_key), digest):
        what = "HMAC" if keyed else "SHA-256 checksum"
        raise ValueError(f"{name} is corrupted or was modified: its {what} does not match its contents")
    return header, payload


def _check_expected(name: str, header: dict, field: str, expected: Any) -> None:
    if expected is None:
        return
    expected = _check_index(expected, field)
    if header.get(field) != expected:
        raise ValueError(f"{name} holds the shares of {field}={header.get(field)}, expected {field}={expected}")


def _leaf(name: str, header: dict, entry: dict, payload: bytes, frac_bits: int | None) -> Any:
    dtype = _DTYPES.get(entry.get("dtype"))
    shape = entry.get("shape")
    if dtype is None or not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
        raise ValueError(f"{name} is corrupted: leaf {entry.get('path')} has an invalid dtype or shape")
    start, size = entry["offset"], entry["nbytes"]
    if size != dtype.itemsize * int(np.prod(shape, dtype=np.int64)) or start < 0 or start + size > len(payload):
        raise ValueError(f"{name} is corrupted: leaf {entry.get('path')} does not fit its place in the payload")
    array = np.frombuffer(payload, dtype=dtype, count=size // dtype.itemsize, offset=start).reshape(shape)
    kind = entry.get("kind")
    if kind == "public":
        return jnp.asarray(array)
    if kind not in ("arith", "bin") or dtype != ring.RING_DTYPE:
        raise ValueError(f"{name} is corrupted: leaf {entry.get('path')} has an invalid kind")
    leaf_frac = entry.get("frac_bits") if kind == "arith" else None
    if kind == "arith":
        ring.check_frac_bits(leaf_frac)
        if frac_bits is not None and leaf_frac != frac_bits:
            raise ValueError(
                f"{name}: leaf {entry['path']} has frac_bits={leaf_frac}, expected frac_bits={frac_bits}"
            )
    return PartyShare(jnp.asarray(array), kind, leaf_frac, header["party"], header["n_parties"])


def load(
    path: str | os.PathLike,
    *,
    party: int | None = None,
    n_parties: int | None = None,
    frac_bits: int | None = None,
    like: Any = None,
    hmac_key: bytes | None = None,
) -> Any:
    """Reads one party's shard written by :func:`save`.

    Returns the saved tree with :class:`PartyShare` leaves (this party's share of each secret) and public
    arrays. Give the values you expect, and a file that does not match is refused: ``party`` (the party
    loading the file should always pass its own index), ``n_parties``, ``frac_bits`` (every arithmetic
    leaf), and ``like``, a template tree whose structure the file's must equal (needed for trees with
    nodes other than dicts, lists, tuples and None; its leaves are not used).

    Raises:
        ValueError: not a share file, another format version, truncated, corrupted (checksum or HMAC
            mismatch), or a header that does not match ``party``, ``n_parties``, ``frac_bits`` or ``like``;
            the message names the file and the problem.
        TypeError: an expected value of the wrong type.
        OSError: the file cannot be read.
    """
    name = os.fspath(path)
    header, payload = _read(path, hmac_key)
    if not isinstance(header.get("party"), int) or not isinstance(header.get("n_parties"), (int, type(None))):
        raise ValueError(f"{name} is corrupted: its header has no valid party index")
    _check_expected(name, header, "party", party)
    _check_expected(name, header, "n_parties", n_parties)
    if frac_bits is not None:
        frac_bits = ring.check_frac_bits(frac_bits)
    leaves = [_leaf(name, header, entry, payload, frac_bits) for entry in header["leaves"]]
    if like is not None:
        treedef = jax.tree_util.tree_structure(like, is_leaf=_is_share)
        if str(treedef) != header.get("treedef"):
            raise ValueError(
                f"{name} holds a tree of another structure than like=: the file has {header.get('treedef')}, "
                f"like has {treedef}"
            )
        if treedef.num_leaves != len(leaves):
            raise ValueError(f"{name} is corrupted: {len(leaves)} leaves for a structure of {treedef.num_leaves}")
        return jax.tree_util.tree_unflatten(treedef, leaves)
    structure = header.get("structure")
    if structure is None:
        raise ValueError(
            f"{name} holds a tree with custom nodes ({header.get('treedef')}); pass like= a tree of the same "
            "structure (e.g. the state you started from) to restore it"
        )
    remaining = list(leaves)
    tree = _rebuild(structure, remaining)
    if remaining:
        raise ValueError(f"{name} is corrupted: its tree structure does not use every leaf")
    return tree


def assemble(shards: Sequence[Any]) -> Any:
    """Stacks every party's loaded shard (``load`` results, any order) into shares of every party.

    The inverse of saving each party's file: :class:`PartyShare` leaves become :class:`sjax.ArithShare` /
    :class:`sjax.BinShare` with the parties stacked on axis 0; public leaves must agree across the shards.
    For simulation and tests: holding every party's shares in one place reveals the secrets.

    Raises:
        ValueError: the shards are not exactly parties ``0 .. n-1`` of one tree (a party missing or twice,
            another structure, another ``n_parties``, ``frac_bits`` or shape, public leaves that differ).
    """
    if not shards:
        raise ValueError("assemble needs at least one shard")
    flats = [jax.tree_util.tree_flatten(s, is_leaf=_is_share) for s in shards]
    treedef = flats[0][1]
    for _, other in flats[1:]:
        if other != treedef:
            raise ValueError(f"the shards hold trees of different structures: {treedef} and {other}")
    secret = [(i, leaf) for i, leaf in enumerate(flats[0][0]) if isinstance(leaf, PartyShare)]
    if not secret:
        raise ValueError("the shards hold no shares")
    n = secret[0][1].n_parties
    parties = []
    for leaves, _ in flats:
        here = {leaf.party for leaf in leaves if isinstance(leaf, PartyShare)}
        counts = {leaf.n_parties for leaf in leaves if isinstance(leaf, PartyShare)}
        if len(here) != 1 or counts != {n}:
            raise ValueError(f"a shard mixes parties {sorted(here)} or party counts {sorted(counts)} (expected {n})")
        parties.append(here.pop())
    if sorted(parties) != list(range(n)):
        raise ValueError(f"assemble needs one shard of each of the {n} parties, got parties {sorted(parties)}")
    order = [flats[parties.index(p)][0] for p in range(n)]
    out = []
    for position, first in enumerate(order[0]):
        column = [leaves[position] for leaves in order]
        if isinstance(first, PartyShare):
            for other in column[1:]:
                if (other.kind, other.frac_bits, other.shape) != (first.kind, first.frac_bits, first.shape):
                    raise ValueError(f"the shards disagree on leaf {position}: kind, frac_bits or shape differ")
            out.append(_as_share(first, jnp.stack([leaf.share for leaf in column])))
        else:
            for other in column[1:]:
                if not (np.shape(other) == np.shape(first) and np.array_equal(np.asarray(other), np.asarray(first))):
                    raise ValueError(f"the shards disagree on public leaf {position}")
            out.append(first)
    return jax.tree_util.tree_unflatten(treedef, out)


def place(tree: Any) -> Any:
    """Under the processes runner: this process's loaded shard as shares placed on the runner's mesh again.

    The way to resume a deployment from saved shares: every process (each party and the dealer) saves its
    own row with ``sjax.save(path, tree)`` (the dealer's row holds zeros and nothing secret), and later
    loads its own file and places it, all processes together::

        state = sjax.storage.place(sjax.load(path, n_parties=n))

    The result holds, bit for bit, the shares that were saved, so a run resumed this way continues exactly
    as one that did not stop.

    Raises:
        ValueError: no processes runner is active (in simulation use :func:`load_all`), or a share of the
            tree belongs to another slot or party count than this process's.
    """
    from sjax.parallel import processes  # noqa: PLC0415  (the runner imports the shares, not storage)

    rt = processes.runtime()
    if rt is None:
        raise ValueError(
            "sjax.storage.place needs the processes runner (a script started by sjax.parallel.launch or "
            "sjax.parallel.party); in simulation, sjax.load_all reassembles every party's files"
        )

    def placed(leaf: Any) -> Any:
        if not isinstance(leaf, PartyShare):
            return leaf
        if leaf.n_parties != rt.n_parties:
            raise ValueError(
                f"sjax.storage.place: the share is of {leaf.n_parties} parties, the runner has {rt.n_parties}"
            )
        if leaf.party != rt.rank:
            owner = "the dealer" if leaf.party == rt.n_parties else f"party {leaf.party}"
            raise ValueError(f"sjax.storage.place: the share is {owner}'s, this process is slot {rt.rank}")
        row = np.asarray(leaf.share)[None]
        shares = jax.make_array_from_process_local_data(rt.party_sharding, row, (rt.n_parties + 1, *leaf.shape))
        return _as_share(leaf, shares)

    return jax.tree_util.tree_map(placed, tree, is_leaf=_is_share)


def load_all(
    paths: Sequence[str | os.PathLike],
    *,
    n_parties: int | None = None,
    frac_bits: int | None = None,
    like: Any = None,
    hmac_key: bytes | None = None,
) -> Any:
    """Loads every party's file (``paths[i]`` must be party ``i``'s) and reassembles the stacked shares.

    For simulation and tests, see :func:`assemble`. Raises the errors of :func:`load` and :func:`assemble`.
    """
    paths = list(paths)
    if n_parties is not None and _check_index(n_parties, "n_parties") != len(paths):
        raise ValueError(f"load_all: {len(paths)} files for n_parties={n_parties}")
    shards = [
        load(p, party=i, n_parties=len(paths), frac_bits=frac_bits, like=like, hmac_key=hmac_key)
        for i, p in enumerate(paths)
    ]
    return assemble(shards)


if sys.byteorder != "little":  # pragma: no cover - every platform JAX supports is little-endian
    raise ImportError("sjax.storage writes little-endian files and needs a little-endian host")
