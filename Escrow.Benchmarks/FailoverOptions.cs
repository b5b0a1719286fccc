namespace Escrow.Benchmarks;

/// <summary>Command line of <c>failover</c>.</summary>
public sealed record FailoverOptions
{
    public int Escrows { get; init; } = 300;
    public int Seconds { get; init; } = 90;
    public int Window { get; init; } = 30;
    public int KillAfter { get; init; } = 50;
    public string? Connection { get; init; }
    public bool SkipBuild { get; init; }
    public string CommandLine { get; init; } = "";

    public const int GraceSeconds = 5;

    public static FailoverOptions Parse(string[] args)
    {
        var o = new FailoverOptions();
        var killGiven = false;
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt(int min)
            {
                var name = args[i];
                var text = Next();
                return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min
                    ? v
                    : throw new ArgumentException($"{name} needs an integer ≥ {min}, not '{text}'.");
            }
            switch (args[i])
            {
                case "--escrows": o = o with { Escrows = NextInt(10) }; break;
                case "--seconds": o = o with { Seconds = NextInt(20) }; break;
                case "--window": o = o with { Window = NextInt(10) }; break;
                case "--kill-after": o = o with { KillAfter = NextInt(5) }; killGiven = true; break;
                case "--connection": o = o with { Connection = Next() }; break;
                case "--skip-build": o = o with { SkipBuild = true }; break;
                case "--help" or "-h": throw new HelpRequested();
                default: throw new ArgumentException($"Unknown failover option {args[i]}.");
            }
        }
        if (!killGiven)
        {
            // Deadlines have been firing for 15 s and replies keep arriving: the middle of releases and refunds.
            o = o with { KillAfter = Math.Min(o.Window + GraceSeconds + 15, o.Seconds * 2 / 3) };
        }
        if (o.KillAfter >= o.Seconds)
        {
            throw new ArgumentException($"--kill-after ({o.KillAfter}) must be before the end of the load (--seconds {o.Seconds}).");
        }
        var shown = args.Select(a => a.Contains(' ', StringComparison.Ordinal) || a.Contains(';', StringComparison.Ordinal) ? "\"" + a + "\"" : a);
        return o with { CommandLine = "dotnet run -c Release --project Escrow.Benchmarks -- failover" + (args.Length > 0 ? " " + string.Join(' ', shown) : "") };
    }

    public const string Usage = """
        dotnet run -c Release --project Escrow.Benchmarks -- failover [options]
          Two silos clustered through PostgreSQL (ADO.NET): process 1 = Escrow.Api (HTTP, co-hosted silo, sandboxes),
          process 2 = Escrow.Silo; a steady load of escrows (half replied to, half left to the deadline); SIGKILL of
          process 2 in the middle; time to converge and the money invariants of every escrow. Exit 1 on a violation.
          --escrows N           escrows created at a steady rate over the load (default 300)
          --seconds S           duration of the load (default 90)
          --window W            response window in seconds (default 30; grace is 5 s)
          --kill-after K        SIGKILL of process 2 K seconds into the load (default min(W + 20, 2/3 of S))
          --connection "..."    use this PostgreSQL instead of starting a private one
          --skip-build          use the Release builds already in Escrow.Api/bin and Escrow.Silo/bin
        """;
}
