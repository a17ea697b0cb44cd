"""Keys, per-party randomness and the dealer's correlated randomness.

Every protocol takes one JAX PRNG key and uses each key once (``jax.debug_key_reuse(True)`` holds). Inside
a protocol body a key is split into one key per purpose; each correlation gives every party its own
expansion, which it shares with the dealer. The dealer expands every party's part (one generator call for
all parties), forms the correlated components (``c = a * b``, ``c = a @ b``, ``(r, r >> f)`` ...) and sends
party 0 alone the corrections that make the shares of those components add up: one offline message per
correlation, to one party. The dealer sees key material only, never a share of an input and never an
opened value.

In simulation (and on the devices runner) every party's part comes from the correlation's key, so runs are
reproducible: one ChaCha20 keystream of the key, cut into consecutive per-party rows, and each party's
expansion is its row of the dealer's (the same bits, computed once: every generator call site compiles its
own copy of the cipher). Only words that are used are drawn: the free components for every party, the
derived ones for parties ``1 .. n-1`` (party 0's are the dealer's corrections), and an owner's masks for
the parties other than the owner. Under the processes runner each party's part instead comes from a private
seed it agreed with the dealer (or, for masks, with the owner). A correlation needs one dealer message
however many components it has; protocols that need several correlations at once draw them together
(:func:`beaver_with_truncation`, :func:`conversion_material`).

Every mask and correlation comes from ChaCha20 (RFC 8439, :mod:`sjax.prg`), whatever key the user
passes (threefry, rbg, a legacy ``uint32[2]`` key): every function here that splits or expands a key first
turns it into a ChaCha20 key with :func:`cipher_key` (8 words drawn from the key with its own generator; a
no-op on a ChaCha20 key). The user's key is converted where it is first split or expanded, so the whole
tree of keys below it is ChaCha20. The conversion is deterministic: the same key gives bit-identical
shares. Its cost is one 8-word draw per user key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from sjax import bits, comm, prg, ring

__all__ = [
    "check_key",
    "cipher_key",
    "split",
    "uniform",
    "owner_masks",
    "correlation",
    "beaver_triple",
    "square_pair",
    "truncation_triple",
    "beaver_with_truncation",
    "and_triple",
    "dual_random",
    "random_bit",
    "conversion_material",
    "sign_material",
    "SIGN_AND_ROWS",
]

Shape = tuple[int, ...]


def check_key(key: object, what: str = "key") -> jax.Array:
    """Returns ``key`` as a typed PRNG key, or raises an error that says what is wrong with it.

    Accepts a typed key of any implementation (``jax.random.key(seed)``, ``impl="rbg"``,
    ``impl=sjax.prg.CHACHA20`` ...) or a legacy raw key (``jax.random.PRNGKey(seed)``). Whatever the
    implementation, every mask and correlation derived from it comes from ChaCha20: the functions here
    convert a key where they first split or expand it (:func:`cipher_key`).

    Raises:
        TypeError: ``key`` is not a key (an int, a float array, a share ...).
        ValueError: ``key`` is an array of several keys.
    """
    if isinstance(key, (jax.Array, np.ndarray)):
        if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
            if key.shape != ():
                raise ValueError(f"{what} must be a single PRNG key, got an array of keys of shape {key.shape}")
            return key
        if key.dtype == jnp.uint32 and key.shape[-1:] == (2,):
            if key.shape != (2,):
                raise ValueError(
                    f"{what} must be a single PRNG key, got an array of raw keys of shape {key.shape}"
                )
            return jax.random.wrap_key_data(key)
        description = f"an array of dtype {key.dtype} and shape {key.shape}"
    else:
        description = f"an object of type {type(key).__name__}"
    raise TypeError(f"{what} must be a JAX PRNG key such as jax.random.key(0), got {description}")


def cipher_key(key: jax.Array) -> jax.Array:
    """``key`` as a ChaCha20 key: itself if it is one, else a ChaCha20 key of 8 words drawn from it.

    The one place where sjax changes generator: every function here that splits or expands a key calls it
    first, as do the few places elsewhere in sjax that split a key directly. Drawing the words consumes
    ``key`` (the reuse checker sees it used once, where a split or a draw would have used it), and a key
    that sjax never splits or expands is never consumed, as before. Deterministic: the same key gives the
    same ChaCha20 key, so the same shares, bit for bit. The ChaCha20 key holds what entropy ``key`` has
    (64 bits for threefry, 128 for rbg, 256 for ChaCha20).
    """
    return prg.from_key(key)


def split(key: jax.Array, num: int) -> tuple[jax.Array, ...]:
    """Splits a key into ``num`` independent ChaCha20 keys, one per purpose."""
    return tuple(jax.random.split(cipher_key(key), num))


def uniform(key: jax.Array, shape: Shape) -> jax.Array:
    """Uniform ring elements (``uint64``) of ``shape``, from ChaCha20."""
    return jax.random.bits(cipher_key(key), shape, dtype=ring.RING_DTYPE)


def _sizes(shapes: Sequence[Shape]) -> list[int]:
    return [int(np.prod(s, dtype=np.int64)) for s in shapes]


def _cut(words: jax.Array, shapes: Sequence[Shape]) -> tuple[jax.Array, ...]:
    """Splits the last axis of ``words`` into consecutive pieces of the given shapes (leading axes kept)."""
    offsets = np.cumsum([0] + _sizes(shapes))
    lead = words.shape[:-1]
    return tuple(words[..., a:b].reshape(*lead, *s) for a, b, s in zip(offsets[:-1], offsets[1:], shapes))


def _expand(key: jax.Array, shapes: Sequence[Shape]) -> tuple[jax.Array, ...]:
    # One generator call for all components: each call compiles to its own copy of the PRG, so fewer
    # calls mean much smaller programs.
    return _cut(uniform(key, (sum(_sizes(shapes)),)), shapes)


def _private_seeds(key: jax.Array, table: jax.Array) -> jax.Array:
    """ChaCha20 keys ``PRF(table[i], key)`` for every row of a table of private 256-bit seeds.

    The public key (consumed once, so reuse checks see the use) is compressed to 128 bits by ChaCha20 keyed
    with its own bits; each row of ``table`` then keys ChaCha20 as a PRF on those 128 bits (block counter
    and nonce). A row's output is known exactly to those who hold that row's seed.
    """
    derived = _private_seed_words(key, table)
    return jax.vmap(lambda w: jax.random.wrap_key_data(w, impl=prg.CHACHA20))(derived)


def _private_seed_words(key: jax.Array, table: jax.Array) -> jax.Array:
    """The raw ``uint32[rows, 8]`` ChaCha20 keys of :func:`_private_seeds`."""
    words = jax.random.bits(cipher_key(key), (8,), dtype=jnp.uint32)
    digest = prg.block(words, jnp.zeros((1,), jnp.uint32), (3, 0, 0))[0, :4]
    return jax.vmap(lambda secret: prg.block(secret, digest[:1], digest[1:])[0, :8])(table)


def _reconstruct(stacked: jax.Array, xor: bool) -> jax.Array:
    """The secret behind shares stacked on axis 0: their XOR or their sum modulo 2^64."""
    if xor:
        return jax.lax.reduce(stacked, jnp.uint64(0), jax.lax.bitwise_xor, (0,))
    return stacked.sum(axis=0)


def _simulated_parts(
    key: jax.Array, shapes: Sequence[Shape], n_derived: int
) -> tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]]:
    """In simulation: every party's part of a correlation (the dealer's view) and this party's own.

    One ChaCha20 call draws the words: for each party in turn its free components, then for parties
    ``1 .. n-1`` the last ``n_derived`` (derived) components, which party 0 takes from the dealer's
    corrections instead. The dealer's view has the free components stacked for all ``n`` parties and the
    derived ones for parties ``1 .. n-1``; a party's own parts are its rows (party 0's derived parts are
    placeholders that :func:`sjax.comm.receive_from_dealer` replaces). Each party's own part is read off the
    dealer's view: the same bits, computed once, so a correlation costs one generator call in the program.
    """
    n = comm.n_parties()
    free, derived = list(shapes[: len(shapes) - n_derived]), list(shapes[len(shapes) - n_derived :])
    free_size, derived_size = sum(_sizes(free)), sum(_sizes(derived))
    words = uniform(key, (n * free_size + (n - 1) * derived_size,))
    free_words = words[: n * free_size].reshape(n, free_size)
    derived_words = words[n * free_size :].reshape(n - 1, derived_size)
    everyone = _cut(free_words, free) + _cut(derived_words, derived)
    # This party's rows, taken before the cut: one dynamic index per correlation rather than one per
    # component (a correlation of the bit circuits has dozens, and each index is several operations).
    index = comm.party_index()
    own = _cut(free_words[index], free) + _cut(derived_words[jnp.maximum(index - 1, 0)], derived)
    return own, everyone


def owner_masks(key: jax.Array, shape: Shape, *, owner: int = 0, xor: bool = False) -> jax.Array:
    """This party's mask in a fresh sharing of a value held by ``owner``.

    Party ``i != owner`` gets a uniform mask expanded from its seed with the owner. The owner gets minus the
    sum of those masks (or, with ``xor=True``, their XOR), so that the owner adding (XOR-ing) the secret to
    its mask completes a sharing of the secret. No message is sent: each mask comes from a seed that only the
    owner and that party know.
    """
    secrets = comm.party_secrets()
    if secrets is not None:
        # Row j: the expansion of the seed this party agreed with party j. A party other than the owner
        # uses its row for the owner; the owner combines its rows for every other party.
        (masks,) = jax.vmap(lambda k: _expand(k, [shape]))(_private_seeds(key, secrets.pairwise))
        own = masks[owner]
        if xor:
            others = _reconstruct(masks, True) ^ own
        else:
            others = jnp.uint64(0) - (_reconstruct(masks, False) - own)
    else:
        # In simulation: one mask for each party other than the owner, drawn in one ChaCha20 call (row
        # ``j`` is party ``j``'s mask, or party ``j + 1``'s from the owner on).
        index = comm.party_index()
        masks = uniform(key, (comm.n_parties() - 1, *shape))
        own = masks[jnp.clip(jnp.where(index < owner, index, index - 1), 0, masks.shape[0] - 1)]
        others = _reconstruct(masks, True) if xor else jnp.uint64(0) - _reconstruct(masks, False)
    return jnp.where(comm.party_index() == owner, others, own)


def correlation(
    key: jax.Array,
    free_shapes: Sequence[Shape],
    derived_shapes: Sequence[Shape],
    derive: Callable[..., tuple[jax.Array, ...]],
    *,
    name: str,
    count: int,
    xor: Sequence[int] = (),
    also: Sequence[tuple[str, int]] = (),
) -> tuple[jax.Array, ...]:
    """This party's shares of a dealer-made correlation.

    The free components are uniform secrets (their shares are all expanded from seeds); the derived
    components are ``derive(*free_secrets)``, shared by expanding every party's share from its seed and
    correcting party 0's share with one dealer message. Components are additively shared over Z_2^64,
    except those whose indices (free first, then derived) are listed in ``xor``, which are XOR-shared.

    Args:
        key: key for this correlation (used once).
        free_shapes: shapes of the uniform components.
        derived_shapes: shapes of the components ``derive`` returns.
        derive: the dealer's function from the free secrets to the derived secrets.
        name: correlation name for :func:`sjax.cost`.
        count: how many correlations of that name this is.
        xor: indices of the XOR-shared components.
        also: further ``(name, count)`` pairs, when one message completes several correlations.

    Returns:
        This party's shares of the free components, then of the derived ones.
    """
    n_free = len(free_shapes)
    shapes = list(free_shapes) + list(derived_shapes)

    def corrections_from(free, derived_others):
        # The dealer's side: rebuild the free secrets from every party's expansion (``free``, stacked on
        # axis 0), form the derived ones, and subtract parties 1 .. n-1's shares of them
        # (``derived_others``): the rest is party 0's share.
        secrets = tuple(_reconstruct(e, i in xor) for i, e in enumerate(free))
        targets = derive(*secrets)
        return tuple(
            t ^ _reconstruct(e, True) if i in xor else t - _reconstruct(e, False)
            for i, (t, e) in enumerate(zip(targets, derived_others), start=n_free)
        )

    private = comm.party_secrets()
    if private is None:
        own, everyone = _simulated_parts(key, shapes, len(derived_shapes))
        corrections = corrections_from(everyone[:n_free], everyone[n_free:])
    else:
        # Between processes each slot does only its own work: a party expands its own seed; the dealer
        # (the last slot) expands every party's and forms the corrections, and has no expansion of its own
        # (its slot's shares are unused). lax.cond on the slot index runs one branch per device.
        words = _private_seed_words(key, private.dealer)
        index = comm.party_index()
        n = comm.n_parties()

        def expand_row(row, shape_list=tuple(shapes)):
            # The keystream is counter-based: the free components alone are a prefix of a row's expansion.
            return _expand(jax.random.wrap_key_data(row, impl=prg.CHACHA20), shape_list)

        def zeros(shape_list):
            return tuple(jnp.zeros(s, ring.RING_DTYPE) for s in shape_list)

        def dealer(words):
            # Party 0's derived components are what the corrections replace: the dealer does not draw them.
            first = expand_row(words[0], shapes[:n_free])
            others = jax.vmap(expand_row)(words[1:])
            free = tuple(jnp.concatenate([f[None], o]) for f, o in zip(first, others))
            return zeros(shapes), corrections_from(free, others[n_free:])

        def party(words):
            # Party 0's derived components are placeholders that the corrections replace; drawing them
            # anyway keeps one generator call site per branch (each compiles its own copy of ChaCha20).
            return expand_row(words[jnp.minimum(index, n - 1)]), zeros(derived_shapes)

        own, corrections = jax.lax.cond(index == n, dealer, party, words)
    derived = comm.receive_from_dealer(
        corrections, own[n_free:], correlations=((name, count), *also)
    )
    return own[:n_free] + derived


def _product_shape(product, x_shape: Shape, y_shape: Shape) -> Shape:
    return jax.eval_shape(
        product, jax.ShapeDtypeStruct(x_shape, ring.RING_DTYPE), jax.ShapeDtypeStruct(y_shape, ring.RING_DTYPE)
    ).shape


def beaver_triple(
    key: jax.Array,
    x_shape: Shape,
    y_shape: Shape,
    product: Callable[[jax.Array, jax.Array], jax.Array],
    *,
    name: str,
    count: int,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Shares of ``(a, b, product(a, b))`` for uniform ``a`` of ``x_shape`` and ``b`` of ``y_shape``.

    ``product`` is any bilinear ring map: elementwise multiplication (a Beaver triple), matrix product
    (a matrix triple) or convolution (a convolution triple).

    Cost: 0 online rounds; the dealer sends party 0 ``8 * size(product)`` bytes.
    """
    out_shape = _product_shape(product, x_shape, y_shape)
    return correlation(
        key,
        [x_shape, y_shape],
        [out_shape],
        lambda a, b: (product(a, b),),
        name=name,
        count=count,
    )


def beaver_with_truncation(
    key: jax.Array,
    x_shape: Shape,
    y_shape: Shape,
    product: Callable[[jax.Array, jax.Array], jax.Array],
    bits: int,
    *,
    name: str,
    count: int,
) -> tuple[tuple[jax.Array, jax.Array, jax.Array], tuple[jax.Array, jax.Array, jax.Array]]:
    """A :func:`beaver_triple` and a :func:`truncation_triple` for its product, from one expansion.

    Same correlations and dealer bytes as the two made apart, in one dealer message.
    """
    out_shape = _product_shape(product, x_shape, y_shape)
    a, b, r, c, r_low_shifted, r_msb = correlation(
        key,
        [x_shape, y_shape, out_shape],
        [out_shape, out_shape, out_shape],
        lambda a, b, r: (product(a, b), *_truncation_parts(r, bits)),
        name=name,
        count=count,
        also=(("truncation_triple", int(np.prod(out_shape, dtype=np.int64))),),
    )
    return (a, b, c), (r, r_low_shifted, r_msb)


def square_pair(key: jax.Array, shape: Shape) -> tuple[jax.Array, jax.Array]:
    """Shares of ``(a, a * a)`` for uniform ``a``. Dealer: ``8 * size`` bytes to party 0."""
    return correlation(
        key, [shape], [shape], lambda a: (a * a,), name="square_pair", count=int(np.prod(shape, dtype=np.int64))
    )


_LOW_63 = np.uint64(2**63 - 1)


def _truncation_parts(r: jax.Array, bits: int) -> tuple[jax.Array, jax.Array]:
    return (r & _LOW_63) >> np.uint64(bits), r >> np.uint64(63)


def truncation_triple(key: jax.Array, shape: Shape, bits: int) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Shares of ``(r, (r mod 2^63) >> bits, r >> 63)`` for uniform ``r``, for :func:`sjax.truncate`.

    Dealer: ``16 * size`` bytes to party 0.
    """
    return correlation(
        key,
        [shape],
        [shape, shape],
        lambda r: _truncation_parts(r, bits),
        name="truncation_triple",
        count=int(np.prod(shape, dtype=np.int64)),
    )


def and_triple(key: jax.Array, shape: Shape) -> tuple[jax.Array, jax.Array, jax.Array]:
    """XOR shares of ``(a, b, a & b)`` for uniform 64-bit words ``a`` and ``b``: 64 AND triples per word.

    Dealer: ``8 * size`` bytes to party 0.
    """
    return correlation(
        key,
        [shape, shape],
        [shape],
        lambda a, b: (a & b,),
        name="and_triple",
        count=64 * int(np.prod(shape, dtype=np.int64)),
        xor=(0, 1, 2),
    )


def dual_random(key: jax.Array, shape: Shape) -> tuple[jax.Array, jax.Array]:
    """A uniform 64-bit ``r`` shared twice: XOR shares of its bits and additive shares of its value.

    Used to move between the two sharings (A2B). Dealer: ``8 * size`` bytes to party 0.
    """
    return correlation(
        key,
        [shape],
        [shape],
        lambda r: (r,),
        name="dual_random",
        count=int(np.prod(shape, dtype=np.int64)),
        xor=(0,),
    )


def random_bit(key: jax.Array, shape: Shape) -> tuple[jax.Array, jax.Array]:
    """A uniform bit ``b`` shared twice: XOR shares (in bit 0 of a word) and additive shares of ``b``.

    Used to turn XOR-shared bits into arithmetic ones (B2A). Dealer: ``8 * size`` bytes to party 0.
    """
    word, arithmetic = correlation(
        key,
        [shape],
        [shape],
        lambda r: (r & jnp.uint64(1),),
        name="random_bit",
        count=int(np.prod(shape, dtype=np.int64)),
        xor=(0,),
    )
    # AND with a public mask distributes over XOR: every party keeps bit 0 of its share.
    return word & jnp.uint64(1), arithmetic


def conversion_material(
    key: jax.Array, shape: Shape, *, and_words: int, with_bit: bool
) -> tuple[jax.Array, ...]:
    """Everything one A2B (and optionally a B2A of one bit) needs, in one correlation.

    Returns ``(r_bits, r_value, a, b, c)`` and, with ``with_bit``, ``(bit_word, bit_value)`` after them:
    a uniform ``r`` in both sharings, ``and_words`` AND triple words per element (flattened, XOR-shared,
    ``c = a & b``) and a uniform bit in both sharings. Same correlations and dealer bytes as
    :func:`dual_random`, :func:`and_triple` and :func:`random_bit` made apart, in one dealer message.
    """
    size = int(np.prod(shape, dtype=np.int64))
    words = (and_words * size,)
    free = [shape, words, words] + ([shape] if with_bit else [])
    derived = [shape, words] + ([shape] if with_bit else [])
    n_free = len(free)

    def derive(r, a, b, *bit):
        return (r, a & b) + ((bit[0] & jnp.uint64(1),) if with_bit else ())

    xor = tuple(range(n_free)) + (n_free + 1,)
    also = (("and_triple", 64 * and_words * size),) + ((("random_bit", size),) if with_bit else ())
    parts = correlation(
        key, free, derived, derive, name="dual_random", count=size, xor=xor, also=also
    )
    r_bits, a, b = parts[:3]
    r_value, c = parts[n_free], parts[n_free + 1]
    if not with_bit:
        return r_bits, r_value, a, b, c
    # AND with a public mask distributes over XOR: every party keeps bit 0 of its share.
    return r_bits, r_value, a, b, c, parts[3] & jnp.uint64(1), parts[n_free + 2]


SIGN_AND_ROWS = sum(2 * (64 >> level) - 1 for level in range(1, 7))
"""AND triple rows per block of 64 elements in :func:`sjax.primitives.binary.sign_row_body`'s carry tree:
``32 + 31, 16 + 15, 8 + 7, 4 + 3, 2 + 1, 1`` over its six levels, 120 in all."""


def sign_material(key: jax.Array, size: int, *, with_bit: bool) -> tuple[jax.Array, ...]:
    """Everything one sign extraction of ``size`` elements needs (and with ``with_bit`` its B2A), in one
    correlation, bit-sliced (:mod:`sjax.bits`) over blocks of 64 elements.

    Returns ``(r_rows, r_value, a, b, c)`` and, with ``with_bit``, ``(bit_row, bit_value)`` after them: a
    uniform ``r`` per element as XOR shares of its sliced bits (``uint64[64, blocks]``) and additive shares
    of its value (``uint64[64 * blocks]``); :data:`SIGN_AND_ROWS` AND triple words per block (flat,
    XOR-shared, ``c = a & b``); a uniform bit per element as XOR shares of its packed row
    (``uint64[blocks]``) and additive shares of its value. Dealer: ``8 * (64 * (2 if with_bit else 1) +
    120)`` bytes per block to party 0.
    """
    n_blocks = bits.blocks(size)
    triples = (SIGN_AND_ROWS * n_blocks,)
    free = [(64, n_blocks), triples, triples] + ([(n_blocks,)] if with_bit else [])
    derived = [(64 * n_blocks,), triples] + ([(64 * n_blocks,)] if with_bit else [])
    n_free = len(free)

    def derive(r_rows, a, b, *bit_row):
        r = bits.unslice_words(r_rows, 64 * n_blocks)
        return (r, a & b) + ((bits.unpack_bits(bit_row[0], 64 * n_blocks),) if with_bit else ())

    xor = tuple(range(n_free)) + (n_free + 1,)
    also = (("and_triple", 64 * SIGN_AND_ROWS * n_blocks),) + ((("random_bit", size),) if with_bit else ())
    parts = correlation(key, free, derived, derive, name="dual_random", count=size, xor=xor, also=also)
    r_rows, a, b = parts[:3]
    r_value, c = parts[n_free], parts[n_free + 1]
    if not with_bit:
        return r_rows, r_value, a, b, c
    return r_rows, r_value, a, b, c, parts[3], parts[n_free + 2]


def opening_material(
    key: jax.Array,
    free_shapes: Sequence[Shape],
    derived_shapes: Sequence[Shape],
    derive: Callable[..., tuple[jax.Array, ...]],
    *,
    xor: Sequence[int],
    correlations: Sequence[tuple[str, int]],
) -> tuple[jax.Array, ...]:
    """The masks of one fused opening round (:func:`sjax.primitives.fixed.fused_round`), in one correlation.

    The free components are the masks of the operands (uniform ring elements for arithmetic operands,
    uniform words for XOR-shared bits, whose indices are in ``xor``); the derived ones are what the dealer
    computes from them: the parts of each truncation mask, the arithmetic value of each bit mask, one-hot
    vectors of low bits of truncation masks, and the products of masks that the parties' products need.
    Same structure as :func:`correlation`: one dealer message to party 0, ``8`` bytes per derived element.
    ``correlations``: the ``(name, count)`` pairs :func:`sjax.cost` reports, the first one naming it.
    """
    (name, count), *also = correlations
    return correlation(
        key, free_shapes, derived_shapes, derive, name=name, count=count, xor=xor, also=tuple(also)
    )
