using Xunit.Abstractions;

namespace Escrow.Tests.Simulation;

/// <summary>The seeded simulation in the normal test pass (issue #5): a time budget of seeds, and the seeds that once failed.</summary>
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
}
