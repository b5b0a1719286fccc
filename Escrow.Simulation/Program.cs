using System.Globalization;
using System.Runtime.InteropServices;
using Escrow.Simulation;
using Escrow.Simulation.Fuzz;

// escrow reliability commands:
//   sim  --seeds N [--from S] [--escrows E] [--minutes M]   the seeded fault-injecting simulation
//   fuzz --inputs N [--seed S]                                 the HTTP fuzzer against the whole service
var command = args.Length > 0 ? args[0] : "help";
int Int(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

switch (command)
{
    case "sim":
    {
        var from = Int("--from", 1);
        var seeds = Int("--seeds", 100);
        var minutes = Int("--minutes", 0);
        var settings = new SimulationSettings { Escrows = Int("--escrows", new SimulationSettings().Escrows) };
        Console.WriteLine($"simulation: seeds {from}..{from + seeds - 1}, {settings.Escrows} escrows per seed{(minutes > 0 ? $", stop after {minutes} min" : "")}");
        // Ctrl-C or SIGTERM ends a long run after the seed under way, with its summary.
        using var stop = new CancellationTokenSource();
        void Stop(PosixSignalContext signal)
        {
            signal.Cancel = true;
            Console.WriteLine($"{signal.Signal}: stopping after the seed under way");
            stop.Cancel();
        }
        using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        var runner = new SimulationRunner();
        await runner.RunAsync(from, seeds, minutes > 0 ? TimeSpan.FromMinutes(minutes) : null, settings, r =>
        {
            if (!r.Passed)
            {
                Console.WriteLine(SimulationRunner.Describe(r));
            }
            else if (r.Seed % 25 == 0 || seeds <= 25)
            {
                Console.WriteLine($"seed {r.Seed}: ok ({r.Escrows} escrows, {r.Steps} actions, {r.Wall.TotalSeconds:F1} s)");
            }
        }, stop.Token);
        Console.WriteLine(runner.Summary());
        return runner.Failures.Count == 0 ? 0 : 1;
    }
    case "fuzz":
    {
        return await FuzzCommand.RunAsync(Int("--inputs", 100_000), Int("--seed", 1));
    }
    default:
        Console.WriteLine("usage: sim --seeds N [--from S] [--escrows E] [--minutes M] | fuzz --inputs N [--seed S]");
        return 2;
}
