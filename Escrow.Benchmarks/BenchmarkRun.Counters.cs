namespace Escrow.Benchmarks;

public sealed partial class BenchmarkRun
{
    /// <summary>
    /// The database's counters at one end of a measured phase. Grain-state writes are read from the service's own
    /// database, so they are read before the first commit count and after the last: that read never counts as one of
    /// the service's commits.
    /// </summary>
    private sealed record Counters(Dictionary<string, long> GrainWrites, long Commits, (long Bytes, long Syncs) Wal, long Xid)
    {
        /// <summary>Reads the counters and clears the statement counts, before a phase.</summary>
        public static async Task<Counters> BeforeAsync(Database db)
        {
            var grainWrites = await GrainWritesAsync(db.EscrowConnection);
            var commits = await db.Stats.SettledCommitsAsync();
            var wal = await db.Stats.WalAsync();
            var xid = await db.Stats.NextXidAsync();
            if (db.Statements)
            {
                await db.Stats.ResetStatementsAsync();
            }
            return new(grainWrites, commits, wal, xid);
        }

        public static async Task<Counters> AfterAsync(Database db)
        {
            var commits = await db.Stats.SettledCommitsAsync();
            var wal = await db.Stats.WalAsync();
            var xid = await db.Stats.NextXidAsync();
            return new(await GrainWritesAsync(db.EscrowConnection), commits, wal, xid);
        }
    }

    /// <summary>What a phase of <paramref name="Lifecycles"/> lifecycles cost the database, per lifecycle.</summary>
    private sealed record PhaseCost(Counters Before, Counters After, int Lifecycles)
    {
        public long Commits => After.Commits - Before.Commits;

        public double CommitsPer => Commits / (double)Lifecycles;

        /// <summary>Transaction ids assigned: commits that wrote, and so waited for a WAL flush.</summary>
        public double WritesPer => (After.Xid - Before.Xid) / (double)Lifecycles;

        public string GrainWritesPer => string.Join(", ",
            After.GrainWrites.Select(g => $"{g.Key} {(g.Value - Before.GrainWrites.GetValueOrDefault(g.Key)) / (double)Lifecycles:F2}"));
    }
}
