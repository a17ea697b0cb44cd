"""Sharing secrets and revealing results.

Leakage: :func:`reveal` reveals its argument to every party, by definition; :func:`share` reveals nothing
(every share alone is uniform over Z_2^64 whatever the secret).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from sjax import comm, parallel, randomness, ring
from sjax.parallel import processes
from sjax.shares import ArithShare, BinShare

__all__ = ["share", "share_from", "share_bits", "reveal", "share_body", "reveal_body"]


def _check_n_parties(n_parties: object) -> int:
    if isinstance(n_parties, bool) or not isinstance(n_parties, (int, np.integer)):
        raise TypeError(f"n_parties must be an int, got {type(n_parties).__name__}")
    if n_parties < 2:
        raise ValueError(f"n_parties must be at least 2, got {n_parties}")
    return int(n_parties)


def _plaintext(x: object) -> jax.Array:
    if isinstance(x, (ArithShare, BinShare)):
        raise TypeError(f"share takes a plaintext array, got a {type(x).__name__} (it is already shared)")
    if isinstance(x, int) and not isinstance(x, bool) and not -(2**63) <= x < 2**63:
        raise ValueError(f"value {x} is outside the representable range (it does not even fit in int64)")
    try:
        array = jnp.asarray(x)
    except (TypeError, ValueError):
        raise TypeError(f"share takes a numeric array, got {type(x).__name__}") from None
    if not (jnp.issubdtype(array.dtype, jnp.number) or array.dtype == jnp.bool_):
        raise TypeError(f"share takes a numeric array, got dtype {array.dtype}")
    if jnp.issubdtype(array.dtype, jnp.complexfloating):
        raise TypeError("complex values cannot be shared; share the real and imaginary parts")
    return array


def _check_range(x: jax.Array, frac_bits: int) -> None:
    """Rejects NaN, infinities and values the ring cannot hold, when ``x`` is concrete."""
    if isinstance(x, jax.core.Tracer):
        return  # A traced value has no value yet; see sjax.ring for what happens outside the range.
    values = np.asarray(x)
    if jnp.issubdtype(values.dtype, jnp.floating):
        if not np.isfinite(values).all():
            raise ValueError("cannot share NaN or infinite values")
        too_large = np.abs(values.astype(np.float64)) >= ring.max_abs(frac_bits)
    else:
        # Integers compare exactly: float64 would round values near the bound up to it.
        bound = 2 ** (63 - frac_bits)
        wide = values.astype(object)
        too_large = (wide >= bound) | (wide <= -bound)
    if too_large.any():
        worst = values.flat[int(np.argmax(too_large))]
        raise ValueError(
            f"value {worst} is outside the representable range |x| < 2^{63 - frac_bits} "
            f"for frac_bits={frac_bits}"
        )


def share_body(encoded: jax.Array, key: jax.Array, *, owner: int = 0) -> jax.Array:
    """One party's share of ``encoded``, a value held by party ``owner``.

    Cost: 0 rounds, 0 bytes: every mask comes from a seed the owner shares with that party.
    """
    masks = randomness.owner_masks(key, encoded.shape, owner=owner)
    return jnp.where(comm.party_index() == owner, masks + encoded, masks)


def share(
    x,
    key: jax.Array,
    n_parties: int = 2,
    frac_bits: int = ring.DEFAULT_FRAC_BITS,
    *,
    mesh: jax.sharding.Mesh | None = None,
) -> ArithShare:
    """Encodes a plaintext array as fixed point and splits it into ``n_parties`` additive shares.

    Each share alone is uniform over Z_2^64, whatever ``x`` is; any ``n_parties - 1`` shares together are
    independent of ``x``.

    Args:
        x: a float, int or bool array (or anything ``jnp.asarray`` takes).
        key: a PRNG key, used once.
        n_parties: number of parties, at least 2.
        frac_bits: fractional bits of the encoding, in ``[0, 30]``.
        mesh: place party ``i``'s share on device ``i`` of this mesh (one with the axis ``"party"`` of size
            ``n_parties``, e.g. :func:`sjax.parallel.party_mesh`); every protocol on the result then runs
            under ``jax.shard_map`` over it. ``None``: simulated on one device, or, in a process of the
            processes runner, placed on its mesh (``x`` is then a value every process knows; data that one
            party owns enters with :func:`share_from`).

    Returns:
        An :class:`ArithShare` of ``x``'s shape.

    Raises:
        TypeError: ``x`` is not numeric, or ``key`` is not a key.
        ValueError: ``n_parties < 2``, ``frac_bits`` out of range, or (for concrete ``x``) NaN, infinite
            values or ``|x| >= 2**(63 - frac_bits)``. Traced values are not checked; outside the range they
            wrap around.

    Cost: 0 rounds, 0 bytes (the input owner derives the masks from seeds shared pairwise).
    """
    n_parties = _check_n_parties(n_parties)
    frac_bits = ring.check_frac_bits(frac_bits)
    key = randomness.check_key(key)
    array = _plaintext(x)
    if array.dtype == ring.RING_DTYPE:
        raise TypeError(
            "share takes plaintext numbers; uint64 arrays look like ring elements and are ambiguous: "
            "pass int64 or float values (sjax.share_bits takes uint64 words)"
        )
    _check_range(array, frac_bits)
    encoded = ring.encode(array, frac_bits)
    stacked = _run_n(share_body, n_parties, (encoded, key), mesh)
    return ArithShare(stacked, frac_bits=frac_bits)


def share_from(
    x,
    key: jax.Array,
    party: int,
    n_parties: int | None = None,
    frac_bits: int = ring.DEFAULT_FRAC_BITS,
) -> ArithShare:
    """Shares an array that one party owns: only that party's process holds ``x``.

    Under the processes runner, party ``party`` passes the array and every other process (the dealer too)
    passes ``jax.ShapeDtypeStruct(shape, dtype)`` in its place. The owner masks its value with masks it
    derives from the seeds it agreed with each other party, so nothing travels and no other process ever
    sees ``x``. In simulation (and on a devices mesh) the same call takes ``x`` itself.

    Args:
        x: the owner's array, or a ``jax.ShapeDtypeStruct`` in every other process.
        key: a PRNG key, used once; the same in every process.
        party: the owner's index.
        n_parties: number of parties; defaults to the runner's (2 in simulation).
        frac_bits: fractional bits of the encoding.

    Raises:
        TypeError, ValueError: as :func:`share`; also a bad ``party``, or a placeholder where the owner's
            array belongs (or an array in a process that does not own it, which would be a leak waiting
            to happen: pass the placeholder).

    Cost: 0 rounds, 0 bytes. Outside jit under the processes runner (the array enters from the host).
    """
    runtime = processes.runtime()
    if n_parties is None:
        n_parties = runtime.n_parties if runtime is not None else 2
    n_parties = _check_n_parties(n_parties)
    if isinstance(party, bool) or not isinstance(party, (int, np.integer)) or not 0 <= party < n_parties:
        raise ValueError(f"party must be an int in [0, {n_parties}), got {party!r}")
    frac_bits = ring.check_frac_bits(frac_bits)
    key = randomness.check_key(key)
    placeholder = isinstance(x, jax.ShapeDtypeStruct)
    owner_here = runtime is None or runtime.rank == party
    if placeholder and owner_here:
        raise TypeError(
            f"share_from: party {party} owns the value and must pass the array, not a ShapeDtypeStruct"
            + ("" if runtime is not None else " (in simulation every call passes the array)")
        )
    if not placeholder and not owner_here:
        raise TypeError(
            f"share_from: this process is {'the dealer' if runtime.is_dealer else f'party {runtime.rank}'}, "
            f"not the owner (party {party}); pass jax.ShapeDtypeStruct(shape, dtype) instead of the array"
        )
    if placeholder:
        encoded = np.zeros(x.shape, dtype=np.uint64)
    else:
        array = _plaintext(x)
        if array.dtype == ring.RING_DTYPE:
            raise TypeError("share_from takes plaintext numbers; pass int64 or float values, not uint64")
        _check_range(array, frac_bits)
        encoded = ring.encode(array, frac_bits)
    body = functools.partial(_owner_share_body, owner=int(party))
    if runtime is None:
        local = jnp.zeros((n_parties, *encoded.shape), ring.RING_DTYPE).at[party].set(encoded)
        return ArithShare(parallel.run(body, (local,), (key,)), frac_bits=frac_bits)
    if n_parties != runtime.n_parties:
        raise ValueError(f"share_from: n_parties={n_parties}, but this runner has {runtime.n_parties} parties")
    # Each process contributes its own row: the owner its encoded value, everyone else zeros.
    rows = jax.make_array_from_process_local_data(
        runtime.party_sharding, np.asarray(encoded)[None], (runtime.n_parties + 1, *encoded.shape)
    )
    return ArithShare(parallel.run(body, (rows,), (_global_key(key),)), frac_bits=frac_bits)


def _owner_share_body(local: jax.Array, key: jax.Array, *, owner: int) -> jax.Array:
    """One party's share of the value the owner holds in ``local`` (every other party holds zeros there)."""
    masks = randomness.owner_masks(key, local.shape, owner=owner)
    return jnp.where(comm.party_index() == owner, masks + local, masks)


def share_bits(x, key: jax.Array, n_parties: int = 2, *, mesh: jax.sharding.Mesh | None = None) -> BinShare:
    """XOR-shares the 64-bit words of an integer array (two's complement for signed values).

    Cost: 0 rounds, 0 bytes.
    """
    n_parties = _check_n_parties(n_parties)
    key = randomness.check_key(key)
    array = _plaintext(x)
    if not (jnp.issubdtype(array.dtype, jnp.integer) or array.dtype == jnp.bool_):
        raise TypeError(f"share_bits takes an integer array, got dtype {array.dtype}")
    words = array if array.dtype == ring.RING_DTYPE else array.astype(jnp.int64).astype(ring.RING_DTYPE)

    def body(words, key):
        masks = randomness.owner_masks(key, words.shape, xor=True)
        return jnp.where(comm.party_index() == 0, masks ^ words, masks)

    return BinShare(_run_n(body, n_parties, (words, key), mesh))


def _run_n(body, n_parties: int, replicated: tuple, mesh=None) -> jax.Array:
    """Runs a body that takes only replicated inputs once for each of ``n_parties`` parties.

    The parties run where ``mesh`` puts them (or, in a processes runner's process, on its mesh).
    """
    runtime = processes.runtime()
    if mesh is not None:
        if comm.PARTY_AXIS not in getattr(mesh, "axis_names", ()):
            raise ValueError(f"mesh must have an axis named 'party', got axes {getattr(mesh, 'axis_names', mesh)}")
        slots = dict(zip(mesh.axis_names, mesh.axis_sizes))[comm.PARTY_AXIS]
        if slots != n_parties:
            raise ValueError(f"n_parties={n_parties}, but the mesh's party axis has {slots} devices")
        if processes.is_processes_mesh(mesh):
            raise ValueError("a processes runner's mesh is used implicitly: call share without mesh=")
        placeholder = jax.device_put(
            jnp.zeros((n_parties,), dtype=jnp.uint8),
            jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(comm.PARTY_AXIS)),
        )
    elif runtime is not None:
        if n_parties != runtime.n_parties:
            raise ValueError(f"n_parties={n_parties}, but this runner has {runtime.n_parties} parties")
        placeholder = jax.device_put(np.zeros((n_parties + 1,), np.uint8), runtime.party_sharding)
        replicated = tuple(_global_key(r) if _is_key(r) else r for r in replicated)
    else:
        placeholder = jnp.zeros((n_parties,), dtype=jnp.uint8)
    return parallel.run(lambda _, *r: body(*r), (placeholder,), replicated)


def _is_key(value) -> bool:
    return isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key)


def _global_key(key: jax.Array) -> jax.Array:
    """A key every process holds, as an input the processes' common program can take (outside jit)."""
    if isinstance(key, jax.core.Tracer):
        return key
    return key


def reveal_body(x: jax.Array, *, frac_bits: int) -> jax.Array:
    """Every party's view of the opened, decoded value. Cost: 1 round, ``8 * (n - 1) * size`` bytes each."""
    (opened,) = comm.open_shares(x)
    return ring.decode(opened, frac_bits)


def reveal(s: ArithShare | BinShare, to: int | None = None) -> jax.Array | None:
    """Reconstructs a secret and reveals it to every party, or to party ``to`` alone.

    Args:
        s: an :class:`ArithShare` (decoded to ``float64``: exact up to ``2^(53 - frac_bits)`` in magnitude,
            about 1.4e11 for 16 bits, and to 53 significant bits beyond) or a :class:`BinShare` (returned
            as ``uint64`` words).
        to: ``None`` to reveal to every party; a party index to reveal to that party only: every other
            party sends it its share and receives nothing.

    Returns:
        The plaintext. Under the processes runner, called outside jit: this process's copy as a numpy
        array where the value was revealed to it, and ``None`` in every other process (the dealer's always).
        In simulation (where one process plays every party) and on a devices mesh: the value.

    Raises:
        TypeError: ``s`` is not a share.
        ValueError: ``to`` is not a party index.

    Cost: 1 round; each party sends ``8 * (n_parties - 1) * size`` bytes (with ``to``: each party other
    than ``to`` sends ``8 * size`` bytes, to ``to`` only).
    Leakage: the value, to the parties it is revealed to.
    """
    if not isinstance(s, (ArithShare, BinShare)):
        raise TypeError(f"reveal takes an ArithShare or a BinShare, got {type(s).__name__}")
    if to is not None and (
        isinstance(to, bool) or not isinstance(to, (int, np.integer)) or not 0 <= to < s.n_parties
    ):
        raise ValueError(f"reveal: to must be a party index in [0, {s.n_parties}), got {to!r}")
    if isinstance(s, ArithShare):
        decode = functools.partial(ring.decode, frac_bits=s.frac_bits)
    else:
        decode = lambda words: words  # noqa: E731
    if to is None:
        if isinstance(s, ArithShare):
            body = functools.partial(reveal_body, frac_bits=s.frac_bits)
        else:
            body = lambda x: comm.open_bits(x)[0]  # noqa: E731
        public = parallel.run(body, (s.shares,), out="public")
        receivers = None
    else:
        if isinstance(s, BinShare):
            raise TypeError("reveal(to=...) takes an ArithShare; reveal a BinShare to every party")
        public = parallel.run(lambda x: decode(comm.open_to(int(to), x)[0]), (s.shares,), out="party")
        receivers = int(to)
    return _deliver(public, receivers)


def _deliver(value: jax.Array, receiver: int | None) -> jax.Array | None:
    """What the caller's process gets of an opened value (see :func:`reveal`)."""
    runtime = processes.runtime()
    traced = isinstance(value, jax.core.Tracer)
    if runtime is not None and not traced and not value.is_fully_addressable:
        if runtime.is_dealer or (receiver is not None and runtime.rank != receiver):
            return None
        local = processes.local_array(value)
        return local[0] if receiver is not None else local
    if receiver is None:
        return value
    # A per-party result (zeros except at the receiver): the receiver's row.
    mesh = parallel.mesh_of(value)
    if mesh is not None:  # placed on a devices mesh: the row comes off its device
        replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
        return value.at[receiver].get(out_sharding=replicated)
    return value[receiver]
