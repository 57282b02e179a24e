"""ember-lm's data order and word vocabulary, written out for the PyTorch sides of the recipes, so
that they see the example's split, vocabulary and batches exactly.

- `SplitMix64`: `ember_lm::data::SplitMix64` (seed, derive, below, Fisher-Yates shuffle).
- `batches`: `ember_lm::data::order::batches` (a (seed, epoch) shuffle, length bucketing within
  windows of 50 batches, the batches shuffled again).
- `WordTokenizer`: `ember_lm::data::WordTokenizer::from_corpus(texts, min_freq, lowercase=True)`
  (whitespace words by frequency then alphabetically, after <pad> <unk> <bos> <eos>; unknown
  words are <unk>, and decoding keeps <unk> and drops the other specials).
"""

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & M64

    @classmethod
    def derive(cls, seed, parts):
        g = cls(seed)
        for part in parts:
            g = cls(g.next() ^ ((part * GOLDEN) & M64))
        return g

    def next(self):
        self.state = (self.state + GOLDEN) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)

    def below(self, n):
        return (self.next() * n) >> 64

    def shuffle(self, items):
        for i in range(len(items) - 1, 0, -1):
            j = self.below(i + 1)
            items[i], items[j] = items[j], items[i]


def batches(lengths, batch_size, shuffle, bucket, seed, epoch):
    order = list(range(len(lengths)))
    rng = SplitMix64.derive(seed, [0xB0, epoch])
    if shuffle:
        rng.shuffle(order)
    if bucket:
        w = batch_size * 50
        order = [i for k in range(0, len(order), w) for i in sorted(order[k : k + w], key=lambda i: lengths[i])]
    out = [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    if bucket and shuffle:
        rng.shuffle(out)
    return out


SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]


class WordTokenizer:
    def __init__(self, texts, min_freq):
        counts = {}
        for s in texts:
            for w in s.split():
                w = w.lower()
                counts[w] = counts.get(w, 0) + 1
        kept = sorted(
            (w for w, c in counts.items() if c >= max(min_freq, 1) and w not in SPECIALS),
            key=lambda w: (-counts[w], w),
        )
        self.words = SPECIALS + kept
        self.index = {w: i for i, w in enumerate(self.words)}
        self.vocab = len(self.words)

    def encode(self, text):
        return [self.index.get(w.lower(), 1) for w in text.split()]

    def decode(self, ids):
        return " ".join(self.words[i] for i in ids if i == 1 or i >= 4)
