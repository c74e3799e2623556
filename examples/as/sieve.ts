// sieve — segmented sieve of Eratosthenes, AssemblyScript + @assemblyscript/wasi-shim.
//
//   sieve-as [N [SEGMENT]]        defaults: 20000000 2000000
//
// Counts the primes below N one segment of SEGMENT numbers at a time (one
// reused buffer, so the working set stays at SEGMENT bytes plus the base
// primes). After every segment it prints
//   segment I [LO, HI): C primes so far
// and at the end
//   primes below N: C
// Output depends only on the arguments.

function argOr(i: i32, def: u32): u32 {
  const argv = process.argv;
  if (argv.length <= i) return def;
  const s = argv[i];
  let v: u64 = 0;
  let ok = s.length > 0 && s.length <= 10;
  for (let k = 0; ok && k < s.length; k++) {
    const c = s.charCodeAt(k);
    if (c < 48 || c > 57) ok = false;
    else v = v * 10 + <u64>(c - 48);
  }
  if (!ok || v > 0xffffffff) {
    console.error("sieve-as: bad argument '" + s + "' (usage: sieve-as N SEGMENT)");
    process.exit(2);
  }
  return <u32>v;
}

const n = argOr(1, 20000000);
let seg = argOr(2, 2000000);
if (seg < 1024) seg = 1024;

// Base primes up to sqrt(n), by a plain sieve.
let root: u32 = <u32>Math.sqrt(<f64>n) + 1;
const small = new StaticArray<u8>(<i32>root + 1); // 1 = composite
const basePrimes = new Array<u32>();
for (let i: u32 = 2; i <= root; i++) {
  if (unchecked(small[i])) continue;
  basePrimes.push(i);
  for (let j: u64 = <u64>i * i; j <= <u64>root; j += i) unchecked(small[<i32>j] = 1);
}

const mark = new StaticArray<u8>(<i32>seg);
let count: u64 = 0;
let index = 0;
for (let lo: u64 = 0; lo < <u64>n; lo += seg) {
  let hi: u64 = lo + seg;
  if (hi > <u64>n) hi = <u64>n;
  const len = <i32>(hi - lo);
  memory.fill(changetype<usize>(mark), 0, <usize>len);
  for (let k = 0, m = basePrimes.length; k < m; k++) {
    const p = <u64>unchecked(basePrimes[k]);
    if (p * p >= hi) break;
    let start = p * p;
    if (start < lo) start = (lo + p - 1) / p * p;
    for (let j = start; j < hi; j += p) unchecked(mark[<i32>(j - lo)] = 1);
  }
  for (let i = 0; i < len; i++) {
    const v = lo + <u64>i;
    if (v >= 2 && !unchecked(mark[i])) count++;
  }
  console.log("segment " + index.toString() + " [" + lo.toString() + ", " + hi.toString() + "): " +
    count.toString() + " primes so far");
  index++;
}
console.log("primes below " + n.toString() + ": " + count.toString());
