"""RedisStore and AsyncRedisStore: records in Redis (or Valkey), one Lua script per operation.

Needs the ``redis`` package (``pip install 'totpcore[redis]'``) and Redis 7.0 or later (or
Valkey); the library core never imports it. The stores take a ready client, so TLS, ACL users,
Sentinel and connection pools are configured on the client; a ``valkey`` client works too, as
the stores only call the methods both share. The client must return bytes: secrets are raw
bytes, so a client made with ``decode_responses=True`` is refused.

**Keys.** With the default prefix ``totpcore:``:

- ``totpcore:{user:<hex>}``: one hash per user, ``<hex>`` the hexadecimal UTF-8 of the user id
  (any Unicode, braces included, gives a key of one hash tag). Fields: ``v`` (schema version
  ``"2"``) and every :class:`~totpcore.UserRecord` field: text and decimal integers as such,
  ``secret`` as its raw bytes, times as ``repr`` of the float (so they read back exactly),
  ``None`` as the empty string, ``failure_log`` and ``recovery_hashes`` comma-separated.
- ``totpcore:users``: a sorted set of every user id (UTF-8, score 0), for
  :meth:`RedisStore.user_ids`. ``ZRANGEBYLEX`` compares bytes, and UTF-8 byte order is code
  point order, so pages come sorted exactly as Python's ``sorted`` sorts strings.
- ``totpcore:meta``: a hash of the store-wide settings (:meth:`RedisStore.get_meta`) and the
  field ``schema_version`` (``"2"``), which is therefore not a setting name.

**One script per operation.** Every operation that reads before it writes (``begin_attempt``,
``mark_used``, ``activate``, ``resync``, ``set_recovery_hashes``, ``consume_recovery_hash``,
``set_secret``, ``unlock``, ``insert``, ``replace``, ``set_meta``) is one Lua script, which
Redis runs atomically: N concurrent operations behave exactly like N sequential ones. Each
script implements the rule of :mod:`totpcore.stores._rules` for its operation, reads the
record, checks everything, and then writes with a single ``HSET`` (or not at all), so a
refused or failed operation writes nothing. Scripts are sent by ``EVALSHA``; after a server
restart or ``SCRIPT FLUSH`` the ``NOSCRIPT`` reply is answered with one ``EVAL``, which also
caches the script again. Times are doubles in Lua as in Python: stored times are parsed with
``tonumber`` and a computed stamp is written with ``%.17g``, which reads back as the same
float. Generations (62-bit) and steps are compared as decimal strings, never as Lua numbers,
which are exact only up to 2**53. The charge (``begin_attempt``) answers with the record packed
into one string by Lua's ``struct`` library (which Redis and Valkey both provide), the
cheapest reply for the client to read; the other scripts answer 0 or 1.

**Round trips.** ``get`` is one ``HMGET``; each scripted operation is one ``EVALSHA``. A
login check (``begin_attempt`` then ``mark_used``) therefore costs two round trips, and so
does an API-header repeat; the first use of each script on a server (or after a restart)
adds one ``EVAL``. ``insert`` adds one ``ZADD`` and ``delete`` is ``DEL`` then ``ZREM``. No
command is issued per call beyond these (no ``SCRIPT EXISTS``, no index update on a login).

**Optional capabilities.** :class:`~totpcore.UserListing` is offered. ``charge_and_mark``
(one commit per login) is not: it runs the service's Python decision inside the atomic
section, which a Lua script cannot. Neither is ``insert_many``: records of many users lie in
many cluster slots, so no single script could insert them all or none.

**Cluster.** Each script touches one key, the user's hash (or the metadata hash), so the
stores work with Redis Cluster clients. The listing index lives in another slot and is
therefore written by a separate command: ``insert`` adds the id to the index *before* the
record is written, and ``delete`` removes it *after* the record is gone, so the index may
briefly (or, after a failure between the two commands, until :meth:`RedisStore.rebuild_index`)
list an id that has no record, but never misses a stored user. The index serves the admin
listing only; no login reads it.

**Failover and durability.** Redis acknowledges a write before it reaches the disk or any
replica. If the primary crashes, or a replica without the latest writes is promoted, the last
writes are lost: a lost ``mark_used`` lets the same code be accepted again (a replay within its
window), a lost charge forgets an attempt, a lost lock lifts it. To prevent it, run the server
with ``appendonly yes`` and ``appendfsync always`` (every write is on disk before the reply;
``everysec`` can lose up to a second), and with replicas use ``min-replicas-to-write`` or
``wait_replicas`` below. Client retries (redis-py retries on connection errors by default) may
send a script twice; every script fails closed when repeated: a second compare-and-set reports
``False`` (the code is refused, the recovery code is spent) and a second charge counts twice.

``wait_replicas=N`` sends ``WAIT N`` after each scripted operation, pipelined on the same
connection (``WAIT`` covers only the writes of its own connection, and cannot run inside a
script). It adds no round trip, but each reply waits until ``N`` replicas have the write, up to
``wait_timeout``; an operation that wrote but reached fewer replicas raises
:class:`~totpcore.StoreError` (the write stays on the primary: a login is refused, never
accepted, on an unconfirmed write). While a replica is missing, even a call that wrote
nothing may wait the full ``wait_timeout`` (``WAIT`` also covers the connection's earlier
writes). Not available with cluster clients.

**Errors.** Every backend failure (connection refused or lost, timeout, a script error, a
malformed record) raises :class:`~totpcore.StoreError` naming the operation and the exception's
type only: redis-py's messages can quote server replies, which may hold record data. The
original exception is kept as ``__context__`` for a debugger, but not printed.
"""

from __future__ import annotations

import functools
import hashlib
import math
import operator
import struct
from collections.abc import Sequence
from typing import Any, NoReturn

from totpcore._throttle import BUDGET_SECONDS
from totpcore.errors import InvalidParameterError, MissingDependencyError, StoreError, TotpcoreError
from totpcore.stores._rules import STAMP_NUDGE
from totpcore.stores.protocol import Attempt, Limits, Status, UserRecord

__all__ = ["DEFAULT_PREFIX", "SCHEMA_VERSION", "AsyncRedisStore", "RedisStore"]

#: The key prefix when none is given.
DEFAULT_PREFIX = "totpcore:"
#: The record layout this release reads and writes (the ``v`` field of each user hash).
SCHEMA_VERSION = "2"
#: The field of the metadata hash holding the schema version (so not a setting name).
SCHEMA_FIELD = "schema_version"

_INSTALL = "the Redis stores need the redis package: pip install 'totpcore[redis]'"
# The hash fields, in the order scripts return them: the version, then the record's fields.
_FIELDS = ("v", *UserRecord._fields)
_STATUS = {status.value.encode(): status for status in Status}
# Builds a record from a tuple of its fields without NamedTuple's Python-level constructor
# (this runs on every verify).
_new_record = functools.partial(tuple.__new__, UserRecord)
# The head of a charge's packed reply: its code, then the byte length of each field.
_PACKED_HEADER = struct.Struct(">B" + "I" * len(_FIELDS))


# --- Lua -------------------------------------------------------------------------------------

# Shared by every record script. The shebang (Redis 7) makes Redis refuse a script up front
# when it is out of memory, instead of at its first write.
_PRELUDE = (
    "#!lua\n"
    "local FIELDS = {" + ", ".join(f"'{name}'" for name in _FIELDS) + "}\n"
    f"local VERSION = '{SCHEMA_VERSION}'\n"
    # The rules' constants, as Lua literals of the same doubles (repr reads back exactly), so
    # that no call sends them.
    f"local BUDGET = {BUDGET_SECONDS!r}\n"
    f"local NUDGE = {STAMP_NUDGE!r}\n"
    # Positions of the fields the charge reads, in FIELDS (Lua counts from 1).
    + "".join(
        f"local {name.upper()} = {_FIELDS.index(name) + 1}\n"
        for name in ("status", "last_failure_at", "last_success_at", "locked_at", "failure_log")
    )
    + r"""
-- A stored time ('' is None) as a number. Errors (before any write) on a malformed value.
local function num(text)
  if text == '' then return nil end
  local value = tonumber(text)
  if value == nil then error('totpcore: malformed number in a record') end
  return value
end

-- The record as a table of fields, or nil when the user has none.
local function load(key)
  local values = redis.call('HMGET', key, unpack(FIELDS))
  if not values[1] then return nil end
  if values[1] ~= VERSION then error('totpcore: record of another schema version') end
  local record = {}
  for index, name in ipairs(FIELDS) do record[name] = values[index] or '' end
  return record
end

-- Compares two decimal integers as Python writes them (str(int)), exactly whatever their
-- size: Lua numbers are doubles and the generations and steps may exceed 2^53.
local function compare(a, b)
  local a_negative, b_negative = a:sub(1, 1) == '-', b:sub(1, 1) == '-'
  if a_negative ~= b_negative then return a_negative and -1 or 1 end
  local sign = a_negative and -1 or 1
  if #a ~= #b then return (#a < #b and -1 or 1) * sign end
  if a == b then return 0 end
  return (a < b and -1 or 1) * sign
end

-- The record if it has this generation and status, else nil.
local function usable(key, generation, status)
  local record = load(key)
  if record == nil or record.generation ~= generation or record.status ~= status then
    return nil
  end
  return record
end

-- The latest fresh success after one more at stamp (successes may complete out of order).
local function later(since, stamp_text)
  if since == '' or num(stamp_text) > num(since) then return stamp_text end
  return since
end

-- The failure log without the stamp charged_at: the last entry if it is that stamp (the
-- usual case), else the first equal one. Entries keep their stored text, so they stay exact.
local function refund(log, charged_text)
  if log == '' then return log end
  local stamp = num(charged_text)
  local entries = {}
  for token in string.gmatch(log, '[^,]+') do entries[#entries + 1] = token end
  local found = nil
  if num(entries[#entries]) == stamp then
    found = #entries
  else
    for index = 1, #entries do
      if num(entries[index]) == stamp then found = index break end
    end
  end
  if found == nil then return log end
  table.remove(entries, found)
  return table.concat(entries, ',')
end
"""
)

# A charge's answer, as a Lua expression over the array ``record`` and the number ``code``: the
# code as one byte, the byte length of each field as a 4-byte unsigned integer, then the fields.
_PACK = (
    f"struct.pack('>B{'I4' * len(_FIELDS)}', code, "
    + ", ".join(f"#record[{index}]" for index in range(1, len(_FIELDS) + 1))
    + ") .. table.concat(record)"
)

# ARGV: status, now, free, base, cap, lockout.
# Returns 0 (no record), or one string: the record packed after a code (1 charged, 0 refused,
# 2 refused and locked; see _PACK), built by Lua's struct library in one call. One bulk string
# is far cheaper for the client to read than an array of fifteen (redis-py parses each element
# in Python), and for the server to write. The record is read and changed as the array HMGET
# returns, by position: this runs on every login.
_CHARGE = r"""
local key = KEYS[1]
local record = redis.call('HMGET', key, unpack(FIELDS))
if not record[1] then return 0 end
if record[1] ~= VERSION then error('totpcore: record of another schema version') end
for index = 2, #FIELDS do record[index] = record[index] or '' end

local function packed(code) return PACK end

if record[STATUS] ~= ARGV[1] or record[LOCKED_AT] ~= '' then return packed(0) end
local now_text = ARGV[2]
local now = num(now_text)
local last = num(record[LAST_FAILURE_AT])
local log = record[FAILURE_LOG]
if log ~= '' then
  -- Prune and count: a stamp is kept while the run of failures after the latest fresh
  -- success, or the 24-hour budget, still needs it.
  local since = num(record[LAST_SUCCESS_AT])
  local cutoff = now - BUDGET
  local kept, run, recent = {}, 0, 0
  for token in string.gmatch(log, '[^,]+') do
    local stamp = num(token)
    local in_run = since == nil or stamp > since
    local in_day = stamp > cutoff
    if in_run or in_day then
      kept[#kept + 1] = token
      if in_run then run = run + 1 end
      if in_day then recent = recent + 1 end
    end
  end
  log = table.concat(kept, ',')
  local lockout = num(ARGV[6])
  if run >= lockout or recent >= lockout then
    -- A limit is reached: refused, and the lock is written for every service to see.
    record[LOCKED_AT] = now_text
    record[FAILURE_LOG] = log
    redis.call('HSET', key, 'locked_at', now_text, 'failure_log', log)
    return packed(2)
  end
  -- delay_after(run, free, base, cap) of totpcore._throttle.
  local free, delay = num(ARGV[3]), 0
  local first = free > 0 and free or 1
  if run >= first then
    delay = num(ARGV[4]) * 2 ^ math.min(run - first, 40)
    if delay > num(ARGV[5]) then delay = num(ARGV[5]) end
  end
  if delay ~= 0 and last ~= nil and now < last + delay then return packed(0) end
end
-- Stamps rise strictly, so a success takes back exactly its own charge.
local stamp_text = now_text
if last ~= nil and not (now > last) then
  stamp_text = string.format('%.17g', last + NUDGE)
end
if log == '' then log = stamp_text else log = log .. ',' .. stamp_text end
record[LAST_FAILURE_AT] = stamp_text
record[FAILURE_LOG] = log
redis.call('HSET', key, 'last_failure_at', stamp_text, 'failure_log', log)
return packed(1)
""".replace("PACK", _PACK)

# ARGV: generation, step, drift, allow_equal ('1' or '0'), charged_at.
_MARK_USED = r"""
-- Only the fields the rule reads (the second call of every login): usable() would read all.
local version, generation, status, last_step, since, log = unpack(redis.call('HMGET', KEYS[1],
  'v', 'generation', 'status', 'last_step', 'last_success_at', 'failure_log'))
if not version then return 0 end
if version ~= VERSION then error('totpcore: record of another schema version') end
if generation ~= ARGV[1] or status ~= 'active' then return 0 end
local step = ARGV[2]
last_step, since = last_step or '', since or ''
if last_step == '' or compare(last_step, step) < 0 then
  since = later(since, ARGV[5])
elseif not (ARGV[4] == '1' and last_step == step and since ~= '') then
  -- A repeat must be of a step accepted here: an imported record's mark, with no fresh
  -- success since, allows none.
  return 0
end
-- A repeat (API-header mode) takes back its own charge and leaves last_success_at alone.
redis.call('HSET', KEYS[1], 'last_step', step, 'drift', ARGV[3], 'last_success_at', since,
  'failure_log', refund(log or '', ARGV[5]))
return 1
"""

# ARGV: generation, step, drift, charged_at.
_ACTIVATE = r"""
local record = usable(KEYS[1], ARGV[1], 'setup_pending')
if record == nil then return 0 end
redis.call('HSET', KEYS[1], 'status', 'active', 'last_step', ARGV[2], 'drift', ARGV[3],
  'last_success_at', later(record.last_success_at, ARGV[4]),
  'failure_log', refund(record.failure_log, ARGV[4]))
return 1
"""

# ARGV: generation, step, drift, charged_at, step - 1 (the pair's first step).
_RESYNC = r"""
local record = usable(KEYS[1], ARGV[1], 'active')
if record == nil then return 0 end
if record.last_step ~= '' and compare(record.last_step, ARGV[5]) >= 0 then return 0 end
redis.call('HSET', KEYS[1], 'last_step', ARGV[2], 'drift', ARGV[3],
  'last_success_at', later(record.last_success_at, ARGV[4]),
  'failure_log', refund(record.failure_log, ARGV[4]))
return 1
"""

# ARGV: generation, comma-joined hashes.
_SET_RECOVERY = r"""
if usable(KEYS[1], ARGV[1], 'active') == nil then return 0 end
redis.call('HSET', KEYS[1], 'recovery_hashes', ARGV[2])
return 1
"""

# ARGV: generation, hash, charged_at.
_CONSUME_RECOVERY = r"""
local record = usable(KEYS[1], ARGV[1], 'active')
if record == nil then return 0 end
local remaining, found = {}, false
for entry in string.gmatch(record.recovery_hashes, '[^,]+') do
  if entry == ARGV[2] then found = true else remaining[#remaining + 1] = entry end
end
if not found then return 0 end
redis.call('HSET', KEYS[1], 'recovery_hashes', table.concat(remaining, ','),
  'last_success_at', later(record.last_success_at, ARGV[3]),
  'failure_log', refund(record.failure_log, ARGV[3]))
return 1
"""

# ARGV: generation, expected secret, new secret.
_REENCRYPT = r"""
local record = load(KEYS[1])
if record == nil or record.generation ~= ARGV[1] or record.secret ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'secret', ARGV[3])
return 1
"""

# No ARGV. last_failure_at stays, so stamps keep rising across an unlock.
_UNLOCK = r"""
if load(KEYS[1]) == nil then return 0 end
redis.call('HSET', KEYS[1], 'locked_at', '', 'failure_log', '')
return 1
"""

# ARGV: field, value, field, value ... (every field).
_INSERT = r"""
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""

# ARGV: generation, then field, value ... (every field, so nothing of the old record stays).
_REPLACE = r"""
local record = load(KEYS[1])
if record == nil or record.generation ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
return 1
"""

# KEYS[1]: the metadata hash. ARGV: name, value, has expected ('1'/'0'), expected.
_SET_META = r"""
local current, version = unpack(redis.call('HMGET', KEYS[1], ARGV[1], 'schema_version'))
if version and version ~= VERSION then error('totpcore: store of another schema version') end
if ARGV[3] == '1' then
  if current ~= ARGV[4] then return 0 end
elseif current then
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2], 'schema_version', VERSION)
return 1
"""


class _Script:
    """One Lua script: its source and the SHA1 digest ``EVALSHA`` names it by."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, body: str) -> None:
        self.name = name
        self.source = _PRELUDE + body
        self.sha = hashlib.sha1(self.source.encode(), usedforsecurity=False).hexdigest()

    def __repr__(self) -> str:
        return f"_Script({self.name!r}, {self.sha})"


_SCRIPTS = {
    name: _Script(name, body)
    for name, body in (
        ("begin_attempt", _CHARGE),
        ("mark_used", _MARK_USED),
        ("activate", _ACTIVATE),
        ("resync", _RESYNC),
        ("set_recovery_hashes", _SET_RECOVERY),
        ("consume_recovery_hash", _CONSUME_RECOVERY),
        ("set_secret", _REENCRYPT),
        ("unlock", _UNLOCK),
        ("insert", _INSERT),
        ("replace", _REPLACE),
        ("set_meta", _SET_META),
    )
}


# --- encoding --------------------------------------------------------------------------------


def _integer(value: int) -> str:
    """An integer argument as the decimal text the scripts compare."""
    return str(operator.index(value))


def _time(value: float) -> str:
    """A time as the shortest text that reads back as the same float."""
    number = float(value)
    if not math.isfinite(number):
        raise InvalidParameterError("times must be finite numbers")
    return repr(number)


def _optional_time(value: float | None) -> str:
    """A time, or the empty string for ``None``."""
    return "" if value is None else _time(value)


def _hashes(hashes: Sequence[str]) -> str:
    """Recovery code hashes as one comma-separated field."""
    if isinstance(hashes, str):
        raise TypeError("hashes must be a sequence of str, not a str")
    if any(not isinstance(entry, str) or not entry or "," in entry for entry in hashes):
        raise InvalidParameterError("recovery hashes must be non-empty and must not contain ','")
    return ",".join(hashes)


def _record_fields(record: UserRecord) -> list[Any]:
    """A record as ``field, value, field, value ...`` covering every hash field."""
    if not isinstance(record, UserRecord):
        raise TypeError("record must be a UserRecord")
    values = (
        SCHEMA_VERSION,
        _text(record.user_id),
        record.status.value,
        bytes(record.secret),
        _integer(record.generation),
        record.algorithm,
        _integer(record.digits),
        _integer(record.period),
        "" if record.last_step is None else _integer(record.last_step),
        _integer(record.drift),
        _optional_time(record.last_failure_at),
        _optional_time(record.last_success_at),
        _optional_time(record.locked_at),
        ",".join(_time(stamp) for stamp in record.failure_log),
        _hashes(record.recovery_hashes),
    )
    return [item for pair in zip(_FIELDS, values, strict=True) for item in pair]


def _text(value: str) -> bytes:
    """Text as UTF-8, or StoreError (as SQLite does) when it has no UTF-8 form."""
    if not isinstance(value, str):
        raise TypeError(f"expected a str, not {type(value).__name__}")
    try:
        return value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError("a text value is not encodable as UTF-8") from None


def _decode(values: Sequence[Any]) -> UserRecord | None:
    """The fields in ``_FIELDS`` order (from HMGET or a script) as a record, or ``None``."""
    version = values[0]
    if version is None:
        return None
    if version != SCHEMA_VERSION.encode():
        if isinstance(version, str):
            raise StoreError("the Redis client decodes responses; create it without that")
        raise StoreError("a record has another schema version; upgrade totpcore")
    try:
        (_, user_id, status, secret, generation, algorithm, digits, period, last_step, drift,
         failed, succeeded, locked, log, hashes) = values  # fmt: skip
        return _new_record(
            (
                user_id.decode(),
                _STATUS[status],
                bytes(secret),
                int(generation),
                algorithm.decode(),
                int(digits),
                int(period),
                int(last_step) if last_step else None,
                int(drift),
                float(failed) if failed else None,
                float(succeeded) if succeeded else None,
                float(locked) if locked else None,
                tuple(map(float, log.split(b","))) if log else (),
                tuple(entry.decode() for entry in hashes.split(b",")) if hashes else (),
            )
        )
    except (ValueError, KeyError, TypeError, AttributeError):
        # Not chained: the messages of these quote the malformed value.
        raise StoreError("a stored record is malformed") from None


def _unpack(reply: bytes) -> tuple[int, list[bytes]]:
    """A charge's packed reply as its code and the record's fields (see the script)."""
    try:
        code, *sizes = _PACKED_HEADER.unpack_from(reply)
    except struct.error:
        raise StoreError("a stored record is malformed") from None
    values = []
    position = _PACKED_HEADER.size
    for size in sizes:
        end = position + size
        values.append(reply[position:end])
        position = end
    if position != len(reply):
        raise StoreError("a stored record is malformed")
    return code, values


def _attempt(reply: Any) -> Attempt:
    """begin_attempt's script reply as an Attempt."""
    if reply == 0:
        return Attempt(None, False)
    if not isinstance(reply, bytes):
        # A client that decodes replies was refused at construction; anything else is not
        # what the script sends.
        raise StoreError("Redis answered begin_attempt with an unexpected reply")
    code, values = _unpack(reply)
    return Attempt(_decode(values), code == 1)


def _won(reply: Any) -> bool:
    """Whether a conditional script reports that its condition held (it returns 1)."""
    return bool(reply == 1)


def _wrote(reply: Any) -> bool:
    """Whether a script's reply says it wrote (for ``wait_replicas``).

    Conditional scripts answer 1 when they wrote; a charge answers its packed record after a
    code, 0 for a refusal without a write.
    """
    return bool(reply == 1 or (isinstance(reply, bytes) and reply[:1] != b"\x00"))


def _is_noscript(error: Exception) -> bool:
    """Whether the server does not have the script (after a restart or SCRIPT FLUSH)."""
    return type(error).__name__ == "NoScriptError" or str(error).startswith(
        ("NOSCRIPT", "No matching script")
    )


def _failure(action: str, error: BaseException) -> NoReturn:
    """Raise a backend failure as StoreError naming only the action and the error's type."""
    raise StoreError(f"Redis failed during {action} ({type(error).__name__})") from None


def _check_client(client: Any, wait_replicas: int, wait_timeout: float) -> None:
    """Refuse what cannot work: not a client, a decoding client, WAIT with a cluster client."""
    if not callable(getattr(client, "evalsha", None)):
        raise TypeError("client must be a redis (or valkey) client instance")
    if _decodes(client):
        raise InvalidParameterError(
            "the Redis client decodes responses (decode_responses=True), but secrets are "
            "raw bytes: create the client without decode_responses"
        )
    if not isinstance(wait_replicas, int) or isinstance(wait_replicas, bool):
        raise TypeError("wait_replicas must be an int")
    if wait_replicas < 0:
        raise InvalidParameterError("wait_replicas must be 0 or more")
    if not isinstance(wait_timeout, int | float) or isinstance(wait_timeout, bool):
        raise TypeError("wait_timeout must be a number of seconds")
    if not 0 < wait_timeout < 3600:  # also refuses NaN; WAIT 0 would block forever
        raise InvalidParameterError("wait_timeout must be above 0 and below 3600 seconds")
    if wait_replicas and "Cluster" in type(client).__name__:
        raise InvalidParameterError("wait_replicas is not available with a cluster client")


def _decodes(client: Any) -> bool:
    """Whether the client turns replies into str (redis-py and valkey both say so)."""
    get_encoder = getattr(client, "get_encoder", None)
    if callable(get_encoder):
        try:
            return bool(get_encoder().decode_responses)
        except Exception:  # noqa: S110 - an unusual client: fall back to its pool's options
            pass
    options = getattr(getattr(client, "connection_pool", None), "connection_kwargs", None)
    return isinstance(options, dict) and bool(options.get("decode_responses"))


def _prefix(prefix: str) -> str:
    """Check the key prefix."""
    if not isinstance(prefix, str):
        raise TypeError("prefix must be a str")
    if not prefix:
        raise InvalidParameterError("prefix must not be empty (keys would collide with others)")
    return prefix


def _glob_escape(text: str) -> str:
    """Text as a literal inside a Redis glob pattern (``SCAN MATCH``)."""
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


class _Keys:
    """Key names and argument encoding, shared by the sync and async stores."""

    def __init__(self, prefix: str, wait_replicas: int, wait_timeout: float) -> None:
        self._prefix = _prefix(prefix)
        self._index = self._prefix + "users"
        self._meta = self._prefix + "meta"
        self._wait = wait_replicas
        self._wait_ms = max(1, round(wait_timeout * 1000))
        # The last Limits object a charge was given, with its encoding: a service passes the
        # same object on every login. Held as one tuple so that threads swap it atomically,
        # and compared by identity (an equal Limits of other types must still be checked).
        self._limits: tuple[Limits | None, tuple[str, ...]] = (None, ())

    def _charge_arguments(self, status: Status, now: float, limits: Limits) -> list[str]:
        """begin_attempt's arguments: status, now, free, base, cap, lockout."""
        cached, texts = self._limits
        if cached is not limits:
            texts = _limit_texts(limits)
            self._limits = (limits, texts)
        return [status.value, _time(now), *texts]

    @property
    def prefix(self) -> str:
        """The prefix of every key this store uses."""
        return self._prefix

    def user_key(self, user_id: str) -> str:
        """The key of the hash holding ``user_id``'s record.

        The id's UTF-8 bytes, in hexadecimal, form the hash tag, so any id (braces included)
        gives a key with exactly the one tag and every key of a user maps to one cluster slot.
        """
        return f"{self._prefix}{{user:{_text(user_id).hex()}}}"

    def _pattern(self) -> str:
        """The ``SCAN MATCH`` pattern of every user hash under this prefix."""
        return _glob_escape(self._prefix) + "{user:*}"

    def _page(self, after: str | None, limit: int | None) -> tuple[bytes, int]:
        """ZRANGEBYLEX's lower bound and count for a page (count -1: no limit)."""
        low = b"-" if after is None else b"(" + _text(after)
        return low, -1 if limit is None else max(int(limit), 0)

    def _meta_arguments(self, name: str, value: str, expected: str | None) -> list[Any]:
        if name == SCHEMA_FIELD:
            raise InvalidParameterError(f"{SCHEMA_FIELD!r} is reserved for the schema version")
        return [_text(name), _text(value), "0" if expected is None else "1", _text(expected or "")]

    def _wait_outcome(self, action: str, reply: Any, acknowledged: Any) -> Any:
        """The script's reply, or StoreError when it wrote but too few replicas have it."""
        if isinstance(acknowledged, Exception):
            _failure(action, acknowledged)
        if _wrote(reply) and int(acknowledged) < self._wait:
            raise StoreError(
                f"Redis failed during {action} (the write reached {int(acknowledged)} of "
                f"{self._wait} replicas; it stays on the primary)"
            )
        return reply


def _limit_texts(limits: Limits) -> tuple[str, str, str, str]:
    """The limits as the charge script's arguments (free, base, cap, lockout)."""
    return (
        _integer(limits.free),
        _time(limits.base),
        _time(limits.cap),
        _integer(limits.lockout),
    )


def _mark_arguments(
    generation: int, step: int, drift: int, allow_equal: bool, charged_at: float
) -> list[str]:
    return [
        _integer(generation),
        _integer(step),
        _integer(drift),
        "1" if allow_equal else "0",
        _time(charged_at),
    ]


class RedisStore(_Keys):
    """A :class:`~totpcore.Store` in Redis, shared by every process and server using it.

    Thread-safe (the client's connection pool is). Also a :class:`~totpcore.UserListing`.
    Usable as a context manager, which closes a client made by :meth:`from_url`.

    Args:
        client: A ``redis.Redis`` (or ``redis.RedisCluster``, ``valkey.Valkey``) client, not
            decoding responses.
        prefix: Prefix of every key; two prefixes on one server are separate stores.
        wait_replicas: Replicas that must acknowledge each write before it is reported
            (``WAIT``, pipelined with the script); 0 (the default) does not wait.
        wait_timeout: Seconds ``WAIT`` may block.

    Raises:
        InvalidParameterError: the client decodes responses, the prefix is empty, or a
            ``wait_*`` option is out of range.
        TypeError: ``client`` is not a Redis client, or an option has the wrong type.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
    ) -> None:
        _check_client(client, wait_replicas, wait_timeout)
        super().__init__(prefix, wait_replicas, wait_timeout)
        self._client = client
        self._owned = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
        **client_options: Any,
    ) -> RedisStore:
        """A store on a new ``redis.Redis`` client for ``url`` (closed by :meth:`close`).

        Args:
            url: ``redis://``, ``rediss://`` (TLS) or ``unix://``; an ACL user and password go
                in the URL or in ``client_options``.
            prefix: As for the constructor.
            wait_replicas: As for the constructor.
            wait_timeout: As for the constructor.
            **client_options: Passed to ``redis.Redis.from_url`` (timeouts, retries, TLS).

        Raises:
            MissingDependencyError: the redis package is not installed.
        """
        try:
            import redis
        except ImportError as error:
            raise MissingDependencyError(_INSTALL) from error
        client = redis.Redis.from_url(url, **client_options)
        try:
            store = cls(
                client, prefix=prefix, wait_replicas=wait_replicas, wait_timeout=wait_timeout
            )
        except BaseException:
            client.close()
            raise
        store._owned = True
        return store

    def __repr__(self) -> str:
        # The client is not shown: its repr names hosts, and the store needs no more.
        return f"RedisStore(<{type(self._client).__name__}>, prefix={self._prefix!r})"

    def __enter__(self) -> RedisStore:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    @property
    def client(self) -> Any:
        """The Redis client the store uses."""
        return self._client

    def close(self) -> None:
        """Close the client if :meth:`from_url` made it; a client passed in is the caller's."""
        if self._owned:
            self._owned = False
            try:
                self._client.close()
            except Exception as error:
                _failure("close", error)

    # --- Store protocol ------------------------------------------------------------------

    def get(self, user_id: str) -> UserRecord | None:
        """Return the user's record, or ``None`` (one ``HMGET``)."""
        key = self.user_key(user_id)
        try:
            values = self._client.hmget(key, _FIELDS)
        except Exception as error:
            _failure("get", error)
        return _decode(values)

    def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """Return up to ``limit`` user ids sorted, all strictly greater than ``after``.

        Read from the index, which may briefly list an id whose record is being deleted (see
        the module's notes); callers read each record anyway.
        """
        low, count = self._page(after, limit)
        if count == 0:
            return []
        try:
            ids = self._client.zrangebylex(self._index, low, b"+", 0, count)
        except Exception as error:
            _failure("user_ids", error)
        return _user_ids(ids)

    def insert(self, record: UserRecord) -> bool:
        """Store ``record`` if the user has none yet.

        The id joins the listing index first (``ZADD``), then the record is written by one
        script: the index never misses a stored user.
        """
        fields = _record_fields(record)
        key = self.user_key(record.user_id)
        try:
            self._client.zadd(self._index, {_text(record.user_id): 0})
        except Exception as error:
            _failure("insert", error)
        return _won(self._run("insert", key, fields))

    def replace(self, record: UserRecord, *, generation: int) -> bool:
        """Overwrite the user's whole record if its generation is ``generation``."""
        arguments = [_integer(generation), *_record_fields(record)]
        return _won(self._run("replace", self.user_key(record.user_id), arguments))

    def delete(self, user_id: str) -> bool:
        """Remove the user's record (``DEL``), then its index entry (``ZREM``).

        The entry is removed even when there was no record, so deleting again repairs an
        index left behind by a failure between the two commands.
        """
        key = self.user_key(user_id)
        try:
            removed = self._client.delete(key)
            self._client.zrem(self._index, _text(user_id))
        except Exception as error:
            _failure("delete", error)
        return bool(removed)

    def begin_attempt(self, user_id: str, *, status: Status, now: float, limits: Limits) -> Attempt:
        """Charge one attempt if the user may make one now (one script; see the Store protocol)."""
        reply = self._run(
            "begin_attempt", self.user_key(user_id), self._charge_arguments(status, now, limits)
        )
        return _attempt(reply)

    def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """Compare-and-set the replay mark, taking back the attempt's charge (one script)."""
        arguments = _mark_arguments(generation, step, drift, allow_equal, charged_at)
        return _won(self._run("mark_used", self.user_key(user_id), arguments))

    def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """SETUP_PENDING -> ACTIVE with the confirming step marked used."""
        arguments = [_integer(generation), _integer(step), _integer(drift), _time(charged_at)]
        return _won(self._run("activate", self.user_key(user_id), arguments))

    def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """Move the replay mark to ``step`` if both steps of the pair lie above it."""
        arguments = [
            _integer(generation),
            _integer(step),
            _integer(drift),
            _time(charged_at),
            _integer(operator.index(step) - 1),
        ]
        return _won(self._run("resync", self.user_key(user_id), arguments))

    def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """Replace the recovery code hashes of an ACTIVE record."""
        arguments = [_integer(generation), _hashes(hashes)]
        return _won(self._run("set_recovery_hashes", self.user_key(user_id), arguments))

    def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """Remove one recovery code hash; only one caller can win it."""
        arguments = [_integer(generation), _text(code_hash), _time(charged_at)]
        return _won(self._run("consume_recovery_hash", self.user_key(user_id), arguments))

    def set_secret(self, user_id: str, *, generation: int, expected: bytes, secret: bytes) -> bool:
        """Replace the secret bytes if generation and secret are still as read."""
        arguments = [_integer(generation), bytes(expected), bytes(secret)]
        return _won(self._run("set_secret", self.user_key(user_id), arguments))

    def unlock(self, user_id: str) -> bool:
        """Empty the failure log and lift the lock; ``last_failure_at`` stays."""
        return _won(self._run("unlock", self.user_key(user_id), []))

    def get_meta(self, name: str) -> str | None:
        """Return a store-wide setting, or ``None`` (one ``HMGET``, checking the schema)."""
        try:
            value, version = self._client.hmget(self._meta, [_text(name), SCHEMA_FIELD])
        except TotpcoreError:
            raise
        except Exception as error:
            _failure("get_meta", error)
        return _meta_value(value, version)

    def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """Set a store-wide setting if its current value is ``expected`` (``None``: absent)."""
        arguments = self._meta_arguments(name, value, expected)
        return _won(self._run("set_meta", self._meta, arguments))

    # --- administration ------------------------------------------------------------------

    def rebuild_index(self) -> int:
        """Make the listing index list exactly the stored users; return how many there are.

        Scans every key of the prefix (``SCAN``, so the server stays responsive), adds the
        users missing from the index and removes the ids that have no record. For repairs
        after a failure between a record write and its index update, or after a failover
        lost one; not needed in normal operation.
        """
        try:
            found: set[bytes] = set()
            for key in self._client.scan_iter(match=self._pattern(), count=1000):
                user_id = self._client.hget(key, "user_id")
                if user_id:
                    found.add(bytes(user_id))
            listed = set(self._client.zrange(self._index, 0, -1))
            if found - listed:
                self._client.zadd(self._index, dict.fromkeys(found - listed, 0))
            if listed - found:
                self._client.zrem(self._index, *(listed - found))
        except Exception as error:
            _failure("rebuild_index", error)
        return len(found)

    # --- internals -----------------------------------------------------------------------

    def _run(self, action: str, key: str, arguments: list[Any]) -> Any:
        """Run the action's script on ``key``: one EVALSHA (one EVAL after a NOSCRIPT)."""
        script = _SCRIPTS[action]
        client = self._client
        try:
            if self._wait:
                return self._run_waiting(script, key, arguments)
            try:
                return client.evalsha(script.sha, 1, key, *arguments)
            except Exception as error:
                if not _is_noscript(error):
                    raise
            return client.eval(script.source, 1, key, *arguments)
        except TotpcoreError:
            raise
        except Exception as error:
            _failure(action, error)

    def _run_waiting(self, script: _Script, key: str, arguments: list[Any]) -> Any:
        """The script and ``WAIT`` in one pipeline, so both use the same connection."""
        reply: Any = None
        for evaluate in (True, False):
            with self._client.pipeline(transaction=False) as pipe:
                if evaluate:
                    pipe.evalsha(script.sha, 1, key, *arguments)
                else:
                    pipe.eval(script.source, 1, key, *arguments)
                pipe.execute_command("WAIT", self._wait, self._wait_ms)
                reply, acknowledged = pipe.execute(raise_on_error=False)
            if not (isinstance(reply, Exception) and _is_noscript(reply)):
                break
        if isinstance(reply, Exception):
            raise reply
        return self._wait_outcome(script.name, reply, acknowledged)


def _user_ids(entries: list[Any]) -> list[str]:
    """Index entries (UTF-8 bytes) as user ids."""
    try:
        return [entry.decode() for entry in entries]
    except (UnicodeDecodeError, AttributeError):
        raise StoreError("the listing index holds an entry that is not a user id") from None


def _meta_value(value: bytes | None, version: bytes | None) -> str | None:
    """A setting read with the schema version beside it."""
    if version is not None and version != SCHEMA_VERSION.encode():
        raise StoreError("the Redis store has another schema version; upgrade totpcore")
    try:
        return None if value is None else value.decode()
    except (UnicodeDecodeError, AttributeError):
        raise StoreError("a stored setting is malformed") from None


class AsyncRedisStore(_Keys):
    """The asyncio twin of :class:`RedisStore`, on a ``redis.asyncio`` client.

    The same keys, scripts and guarantees: a store of either kind reads what the other wrote.
    Each operation awaits one command; the atomic section is the script, on the server, so no
    await can split a read from its write. Also an :class:`~totpcore.AsyncUserListing`.
    Usable as an async context manager, which closes a client made by :meth:`from_url`.

    Args:
        client: A ``redis.asyncio.Redis`` (or ``valkey.asyncio.Valkey``) client, not decoding
            responses.
        prefix: As for :class:`RedisStore`.
        wait_replicas: As for :class:`RedisStore`.
        wait_timeout: As for :class:`RedisStore`.

    Raises:
        InvalidParameterError: as for :class:`RedisStore`.
        TypeError: as for :class:`RedisStore`.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = DEFAULT_PREFIX,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
    ) -> None:
        _check_client(client, wait_replicas, wait_timeout)
        super().__init__(prefix, wait_replicas, wait_timeout)
        self._client = client
        self._owned = False

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        prefix: str = DEFAULT_PREFIX,
        wait_replicas: int = 0,
        wait_timeout: float = 1.0,
        **client_options: Any,
    ) -> AsyncRedisStore:
        """A store on a new ``redis.asyncio.Redis`` client for ``url`` (closed by :meth:`aclose`).

        Args:
            url: As for :meth:`RedisStore.from_url`.
            prefix: As for :class:`RedisStore`.
            wait_replicas: As for :class:`RedisStore`.
            wait_timeout: As for :class:`RedisStore`.
            **client_options: Passed to ``redis.asyncio.Redis.from_url``.

        Raises:
            MissingDependencyError: the redis package is not installed.
        """
        try:
            import redis.asyncio
        except ImportError as error:
            raise MissingDependencyError(_INSTALL) from error
        # Connecting is lazy, so a refused option leaves nothing open to close.
        client = redis.asyncio.Redis.from_url(url, **client_options)
        store = cls(client, prefix=prefix, wait_replicas=wait_replicas, wait_timeout=wait_timeout)
        store._owned = True
        return store

    def __repr__(self) -> str:
        return f"AsyncRedisStore(<{type(self._client).__name__}>, prefix={self._prefix!r})"

    async def __aenter__(self) -> AsyncRedisStore:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    @property
    def client(self) -> Any:
        """The Redis client the store uses."""
        return self._client

    async def aclose(self) -> None:
        """Close the client if :meth:`from_url` made it; a client passed in is the caller's."""
        if self._owned:
            self._owned = False
            close = getattr(self._client, "aclose", None) or self._client.close
            try:
                await close()
            except Exception as error:
                _failure("close", error)

    # --- AsyncStore protocol -------------------------------------------------------------

    async def get(self, user_id: str) -> UserRecord | None:
        """As :meth:`RedisStore.get`."""
        key = self.user_key(user_id)
        try:
            values = await self._client.hmget(key, _FIELDS)
        except Exception as error:
            _failure("get", error)
        return _decode(values)

    async def user_ids(self, *, after: str | None = None, limit: int | None = None) -> list[str]:
        """As :meth:`RedisStore.user_ids`."""
        low, count = self._page(after, limit)
        if count == 0:
            return []
        try:
            ids = await self._client.zrangebylex(self._index, low, b"+", 0, count)
        except Exception as error:
            _failure("user_ids", error)
        return _user_ids(ids)

    async def insert(self, record: UserRecord) -> bool:
        """As :meth:`RedisStore.insert`."""
        fields = _record_fields(record)
        key = self.user_key(record.user_id)
        try:
            await self._client.zadd(self._index, {_text(record.user_id): 0})
        except Exception as error:
            _failure("insert", error)
        return _won(await self._run("insert", key, fields))

    async def replace(self, record: UserRecord, *, generation: int) -> bool:
        """As :meth:`RedisStore.replace`."""
        arguments = [_integer(generation), *_record_fields(record)]
        return _won(await self._run("replace", self.user_key(record.user_id), arguments))

    async def delete(self, user_id: str) -> bool:
        """As :meth:`RedisStore.delete`."""
        key = self.user_key(user_id)
        try:
            removed = await self._client.delete(key)
            await self._client.zrem(self._index, _text(user_id))
        except Exception as error:
            _failure("delete", error)
        return bool(removed)

    async def begin_attempt(
        self, user_id: str, *, status: Status, now: float, limits: Limits
    ) -> Attempt:
        """As :meth:`RedisStore.begin_attempt`."""
        reply = await self._run(
            "begin_attempt", self.user_key(user_id), self._charge_arguments(status, now, limits)
        )
        return _attempt(reply)

    async def mark_used(
        self,
        user_id: str,
        *,
        generation: int,
        step: int,
        drift: int,
        allow_equal: bool,
        charged_at: float,
    ) -> bool:
        """As :meth:`RedisStore.mark_used`."""
        arguments = _mark_arguments(generation, step, drift, allow_equal, charged_at)
        return _won(await self._run("mark_used", self.user_key(user_id), arguments))

    async def activate(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`RedisStore.activate`."""
        arguments = [_integer(generation), _integer(step), _integer(drift), _time(charged_at)]
        return _won(await self._run("activate", self.user_key(user_id), arguments))

    async def resync(
        self, user_id: str, *, generation: int, step: int, drift: int, charged_at: float
    ) -> bool:
        """As :meth:`RedisStore.resync`."""
        arguments = [
            _integer(generation),
            _integer(step),
            _integer(drift),
            _time(charged_at),
            _integer(operator.index(step) - 1),
        ]
        return _won(await self._run("resync", self.user_key(user_id), arguments))

    async def set_recovery_hashes(
        self, user_id: str, *, generation: int, hashes: tuple[str, ...]
    ) -> bool:
        """As :meth:`RedisStore.set_recovery_hashes`."""
        arguments = [_integer(generation), _hashes(hashes)]
        return _won(await self._run("set_recovery_hashes", self.user_key(user_id), arguments))

    async def consume_recovery_hash(
        self, user_id: str, *, generation: int, code_hash: str, charged_at: float
    ) -> bool:
        """As :meth:`RedisStore.consume_recovery_hash`."""
        arguments = [_integer(generation), _text(code_hash), _time(charged_at)]
        return _won(await self._run("consume_recovery_hash", self.user_key(user_id), arguments))

    async def set_secret(
        self, user_id: str, *, generation: int, expected: bytes, secret: bytes
    ) -> bool:
        """As :meth:`RedisStore.set_secret`."""
        arguments = [_integer(generation), bytes(expected), bytes(secret)]
        return _won(await self._run("set_secret", self.user_key(user_id), arguments))

    async def unlock(self, user_id: str) -> bool:
        """As :meth:`RedisStore.unlock`."""
        return _won(await self._run("unlock", self.user_key(user_id), []))

    async def get_meta(self, name: str) -> str | None:
        """As :meth:`RedisStore.get_meta`."""
        try:
            value, version = await self._client.hmget(self._meta, [_text(name), SCHEMA_FIELD])
        except TotpcoreError:
            raise
        except Exception as error:
            _failure("get_meta", error)
        return _meta_value(value, version)

    async def set_meta(self, name: str, value: str, *, expected: str | None) -> bool:
        """As :meth:`RedisStore.set_meta`."""
        arguments = self._meta_arguments(name, value, expected)
        return _won(await self._run("set_meta", self._meta, arguments))

    # --- administration ------------------------------------------------------------------

    async def rebuild_index(self) -> int:
        """As :meth:`RedisStore.rebuild_index`."""
        try:
            found: set[bytes] = set()
            async for key in self._client.scan_iter(match=self._pattern(), count=1000):
                user_id = await self._client.hget(key, "user_id")
                if user_id:
                    found.add(bytes(user_id))
            listed = set(await self._client.zrange(self._index, 0, -1))
            if found - listed:
                await self._client.zadd(self._index, dict.fromkeys(found - listed, 0))
            if listed - found:
                await self._client.zrem(self._index, *(listed - found))
        except Exception as error:
            _failure("rebuild_index", error)
        return len(found)

    # --- internals -----------------------------------------------------------------------

    async def _run(self, action: str, key: str, arguments: list[Any]) -> Any:
        """As :meth:`RedisStore._run`, awaited."""
        script = _SCRIPTS[action]
        client = self._client
        try:
            if self._wait:
                return await self._run_waiting(script, key, arguments)
            try:
                return await client.evalsha(script.sha, 1, key, *arguments)
            except Exception as error:
                if not _is_noscript(error):
                    raise
            return await client.eval(script.source, 1, key, *arguments)
        except TotpcoreError:
            raise
        except Exception as error:
            _failure(action, error)

    async def _run_waiting(self, script: _Script, key: str, arguments: list[Any]) -> Any:
        """As :meth:`RedisStore._run_waiting`, awaited."""
        reply: Any = None
        for evaluate in (True, False):
            async with self._client.pipeline(transaction=False) as pipe:
                if evaluate:
                    pipe.evalsha(script.sha, 1, key, *arguments)
                else:
                    pipe.eval(script.source, 1, key, *arguments)
                pipe.execute_command("WAIT", self._wait, self._wait_ms)
                reply, acknowledged = await pipe.execute(raise_on_error=False)
            if not (isinstance(reply, Exception) and _is_noscript(reply)):
                break
        if isinstance(reply, Exception):
            raise reply
        return self._wait_outcome(script.name, reply, acknowledged)
