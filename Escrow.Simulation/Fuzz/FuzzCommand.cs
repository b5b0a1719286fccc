using Escrow.Testing;

namespace Escrow.Simulation.Fuzz;

internal static class FuzzCommand
{
    public static async Task<int> RunAsync(int inputs, int seed)
    {
        Console.WriteLine($"fuzz: {inputs} inputs, seed {seed}");
        await using var app = new EscrowApiFactory();
        _ = app.Server;
        var fuzzer = new ApiFuzzer(app, seed);
        await fuzzer.SetUpAsync();
        var report = new FuzzReport();
        for (var done = 0; done < inputs;)
        {
            var batch = Math.Min(5_000, inputs - done);
            await fuzzer.RunAsync(batch, report);
            done += batch;
            Console.WriteLine($"  {done} inputs, {report.ServerErrors.Count} responses >= 500, {report.StateChangesOnRejection.Count} state changes on 4xx, {report.Wall.TotalSeconds:F0} s");
        }
        Console.WriteLine(report.Summary());
        if (!report.Passed)
        {
            Console.WriteLine($"replay: dotnet run --project Escrow.Simulation -c Release -- fuzz --inputs {inputs} --seed {seed}");
        }
        return report.Passed ? 0 : 1;
    }
}
