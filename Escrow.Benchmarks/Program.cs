using Escrow.Benchmarks;

// Dispatches to a command; each lives in its own file (see BenchOptions.Usage and README's Benchmark section).
CultureInfo.DefaultThreadCurrentCulture = CultureInfo.InvariantCulture;
CultureInfo.CurrentCulture = CultureInfo.InvariantCulture;
return args.FirstOrDefault() switch
{
    EmulatorProcess.Command => await EmulatorProcess.RunAsync(args[1..]),
    "rate-budget" => await RateBudgetScenario.RunAsync(args[1..]),
    "failover" => await Command.RunAsync(() => FailoverOptions.Parse(args[1..]), FailoverOptions.Usage,
        o => new FailoverScenario(o).RunAsync(), "Failover scenario"),
    _ => await Command.RunAsync(() => BenchOptions.Parse(args), BenchOptions.Usage,
        async o => { await new BenchmarkRun(o).RunAsync(); return 0; }, "Benchmark"),
};
