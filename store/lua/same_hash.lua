-- same_hash(a, b): whether two code hashes are equal, compared in constant time
-- (XOR every byte, then test once). Put before the scripts that check a one-time
-- code (store/onetime.py); defines no KEYS or ARGV of its own.
local function same_hash(a, b)
  local diff = (#a == #b) and 0 or 1
  for i = 1, math.min(#a, #b) do
    diff = bit.bor(diff, bit.bxor(string.byte(a, i), string.byte(b, i)))
  end
  return diff == 0
end
