using Escrow.Simulation;
using Xunit.Abstractions;

namespace Escrow.Tests.Simulation;

/// <summary>
/// The simulation runs alone, after the parallel test classes: its faults include Orleans response timeouts, and a
/// machine loaded by other test classes turns scheduling noise into different interleavings than a seed encodes.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SimulationCollection
{
    public const string Name = "simulation";
}

/// <summary>The seeded simulation in the normal test pass: a time budget of seeds, and the seeds that once failed.</summary>
[Collection(SimulationCollection.Name)]
public sealed class SimulationTests(ITestOutputHelper output)
{
    [Fact]
    public async Task Random_interleavings_with_faults_keep_every_invariant()
    {
        var runner = new SimulationRunner();
        await runner.RunAsync(from: 1, count: SimulationRunner.CiSeedsMax, SimulationRunner.CiBudget, new SimulationSettings(),
            r => output.WriteLine(r.Passed ? $"seed {r.Seed}: ok, {r.Escrows} escrows, {r.Steps} actions, {r.Wall.TotalSeconds:F1} s" : SimulationRunner.Describe(r)));
        output.WriteLine(runner.Summary());
        Assert.True(runner.SeedsRun > 0);
        Assert.True(runner.Failures.Count == 0, runner.Summary());
    }

    /// <summary>
    /// Seeds that found a bug, each replayed as it was found:
    /// 1 and 2: an escrow crashed (or its state write failed) after the first write of a new status and before its
    /// reminder was registered, so nothing ever drove it again.
    /// 4 and 15: the breaker's trip alert failed after the trip was stored, so it stayed tripped without an alert.
    /// 216: an escrow in pending_user_setup, not on its recipient's waiting list, relied only on the recipient to move it.
    /// 237: a terminal escrow's write succeeded but its answer was lost, and no reminder was left to sync the last ledger row
    /// (EscrowGrain.EnsureReminderAsync counts unsynced history as work).
    /// 831: an operator refunded a captured escrow whose transfer had been made with its answer lost: paid twice.
    /// 1353: a transfer made with its answer lost, after which the retries ran out, was never adopted (the simulation
    /// now delivers transfer.created as Stripe does).
    /// 2051 (seen once in a 10 000-seed run, not reproduced by replays): an activation whose write lost its answer kept
    /// answering its older state while a newer one was stored (EscrowGrain.LoadAsync reads again after a failed flush).
    /// 2667: an escrow cancelled before its PaymentIntent's creation was answered left the card authorised.
    /// 1792 (seen once in a run, not reproduced by replays): a dispute was resolved while its transfer reversal, made with
    /// its answer lost, waited for a retry; the reversal was dropped and the escrow stayed released without the share.
    /// 1913 (seen once, likewise): a late transfer.created of the transfer an operator's refund had reversed was taken
    /// for a transfer that overtook the refund, and released the escrow whose sender was refunded.
    /// 1784 (seen once, likewise): an operator's release after a reversed share and a refused refund paid under the first
    /// transfer's key; Stripe replayed the reversed transfer and the escrow was released with nothing paid.
    /// </summary>
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(4)]
    [InlineData(15)]
    [InlineData(237)]
    [InlineData(216)]
    [InlineData(831)]
    [InlineData(1353)]
    [InlineData(2051)]
    [InlineData(2667)]
    [InlineData(1792)]
    [InlineData(1913)]
    [InlineData(1784)]
    [InlineData(3671)]
    [InlineData(4890)]
    [InlineData(8355)]
    public async Task Seeds_that_once_failed_pass(int seed)
    {
        var runner = new SimulationRunner();
        await runner.RunAsync(from: seed, count: 1, budget: null, new SimulationSettings());
        output.WriteLine(runner.Summary());
        Assert.True(runner.Failures.Count == 0, runner.Summary());
    }
}
