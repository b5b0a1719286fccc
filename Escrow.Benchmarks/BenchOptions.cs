namespace Escrow.Benchmarks;

/// <summary>Command line of the benchmark. Every figure has a quick default (a few minutes) and a full one.</summary>
public sealed record BenchOptions
{
    public bool Quick { get; init; }
    public int Lifecycles { get; init; }
    public int Concurrency { get; init; }
    public int RefundLifecycles { get; init; }
    public int Open { get; init; }
    public string? Connection { get; init; }
    public string? ServiceConnectionOptions { get; init; }
    public int PgbenchClients { get; init; } = 16;
    public int PgbenchSeconds { get; init; } = 10;
    public int PacedSeconds { get; init; }
    public int OneClientSeconds { get; init; }
    public int IdleSeconds { get; init; }
    public int WarmupSeconds { get; init; }
    public int SpreadSeconds { get; init; }
    public bool Append { get; init; } = true;
    public bool SkipBuild { get; init; }
    public bool SeparateEmulators { get; init; }
    public string CommandLine { get; init; } = "";

    public static BenchOptions Parse(string[] args)
    {
        var quick = args.Contains("--quick");
        var o = new BenchOptions
        {
            Quick = quick,
            Lifecycles = quick ? 400 : 5_000,
            Concurrency = quick ? 16 : 32,
            RefundLifecycles = quick ? 200 : 1_000,
            Open = quick ? 1_000 : 100_000,
            PacedSeconds = quick ? 10 : 30,
            OneClientSeconds = quick ? 10 : 20,
            IdleSeconds = quick ? 15 : 60,
            WarmupSeconds = quick ? 10 : 30,
            SpreadSeconds = quick ? 30 : 120,
        };
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value.");
            int NextInt()
            {
                var name = args[i];
                var text = Next();
                return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= 0
                    ? v
                    : throw new ArgumentException($"{name} needs a non-negative integer, not '{text}'.");
            }
            o = args[i] switch
            {
                "--quick" => o,
                "--lifecycles" => o with { Lifecycles = NextInt() },
                "--concurrency" => o with { Concurrency = Math.Max(1, NextInt()) },
                "--refunds" => o with { RefundLifecycles = NextInt() },
                "--open" => o with { Open = NextInt() },
                "--connection" => o with { Connection = Next() },
                "--service-connection-options" => o with { ServiceConnectionOptions = Next() },
                "--pgbench-clients" => o with { PgbenchClients = Math.Max(1, NextInt()) },
                "--pgbench-seconds" => o with { PgbenchSeconds = Math.Max(1, NextInt()) },
                "--paced-seconds" => o with { PacedSeconds = NextInt() },
                "--one-client-seconds" => o with { OneClientSeconds = NextInt() },
                "--idle-seconds" => o with { IdleSeconds = Math.Max(5, NextInt()) },
                "--warmup-seconds" => o with { WarmupSeconds = NextInt() },
                "--spread-seconds" => o with { SpreadSeconds = NextInt() },
                "--no-append" => o with { Append = false },
                "--skip-build" => o with { SkipBuild = true },
                "--separate-emulators" => o with { SeparateEmulators = true },
                "--help" or "-h" => throw new HelpRequested(),
                _ => throw new ArgumentException($"Unknown option {args[i]}."),
            };
        }
        var shown = args.Select(a => a.Contains(' ', StringComparison.Ordinal) || a.Contains(';', StringComparison.Ordinal) ? "\"" + a + "\"" : a);
        return o with { CommandLine = "dotnet run -c Release --project Escrow.Benchmarks --" + (args.Length > 0 ? " " + string.Join(' ', shown) : "") };
    }

    public const string Usage = """
        dotnet run -c Release --project Escrow.Benchmarks -- [options]
          --quick               small run (defaults: 400 lifecycles, 16 clients, 200 refunds, 1 000 open escrows)
          --lifecycles N        released lifecycles in the throughput phase (full default 5 000)
          --concurrency C       concurrent HTTP clients (full default 32)
          --refunds N           refunded lifecycles (deadline PT30S + grace PT5S; full default 1 000)
          --open N              open escrows held at once in the deadline scenario (full default 100 000)
          --connection "..."    use this PostgreSQL (Npgsql connection string) instead of starting a private one
          --service-connection-options "..."  appended to the service's connection string, to measure a setting
                                such as "No Reset On Close=true" without changing code
          --pgbench-clients C   pgbench clients for the ceiling (default 16; -j 2, -T 10)
          --pgbench-seconds S   pgbench duration (default 10)
          --paced-seconds S     duration of the paced run at half the measured throughput (10 quick, 30 full)
          --one-client-seconds S  released lifecycles one at a time after it: the create's latency with no other
                                client, and the CPU per lifecycle at that load (10 quick, 20 full; 0 skips)
          --idle-seconds S      idle interval measured with the open escrows waiting (15 quick, 60 full)
          --warmup-seconds S    released lifecycles before the measured ones, at least this long (10 quick, 30 full)
          --spread-seconds S    extra spread of the open escrows' deadlines (30 quick, 120 full)
          --no-append           do not append the row to docs/BENCHMARKS.md
          --skip-build          use the Escrow.Api Release build already in Escrow.Api/bin/Release
          --separate-emulators  released, paced and refunded lifecycles with the Stripe and Postmark emulators in a
                                process of their own (called over HTTP like the real services; their CPU is shown
                                apart from the API's); by default they run inside the API process

        dotnet run -c Release --project Escrow.Benchmarks -- failover --help   (two silos, kill -9 of one: see FailoverScenario)
        dotnet run -c Release --project Escrow.Benchmarks -- rate-budget [--escrows N] [--budget R] [--sandbox-limit L]   (a burst of deadlines under the Stripe rate budget)
        """;
}

public sealed class HelpRequested : Exception
{
    public HelpRequested() : base("help")
    {
    }

    public HelpRequested(string message) : base(message)
    {
    }

    public HelpRequested(string message, Exception inner) : base(message, inner)
    {
    }
}
