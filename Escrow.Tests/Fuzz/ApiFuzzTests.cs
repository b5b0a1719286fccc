using Escrow.Simulation.Fuzz;
using Xunit.Abstractions;

namespace Escrow.Tests.Fuzz;

/// <summary>The CI pass of the HTTP fuzzer (issue #5); the Escrow.Simulation command runs the long one.</summary>
public sealed class ApiFuzzTests(ITestOutputHelper output)
{
    public const int CiInputs = 2_000;

    [Fact]
    public async Task Mutated_and_malformed_requests_get_no_5xx_and_rejections_change_nothing()
    {
        await using var app = new EscrowApiFactory();
        _ = app.Server;
        // Seed 1 found the 500s on re-signed, mistyped Stripe events (kept as the CI seed).
        var fuzzer = new ApiFuzzer(app, seed: 1);
        await fuzzer.SetUpAsync();
        var report = await fuzzer.RunAsync(CiInputs);
        output.WriteLine(report.Summary());
        Assert.True(report.Passed, report.Summary());
    }
}
