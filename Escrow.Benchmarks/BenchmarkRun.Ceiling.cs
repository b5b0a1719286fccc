using System.Text.RegularExpressions;

namespace Escrow.Benchmarks;

public sealed partial class BenchmarkRun
{
    private async Task<double> MeasureCeilingAsync(BenchPostgres pg, string work)
    {
        var db = pg.Private ? "ceiling" : pg.Admin.Database!;
        if (pg.Private)
        {
            await Sql.ExecuteAsync(pg.Admin.ConnectionString, "CREATE DATABASE ceiling");
        }
        var cs = pg.ConnectionStringFor(db);
        await Sql.ExecuteAsync(cs, "DROP TABLE IF EXISTS bench_ceiling_kv; CREATE TABLE bench_ceiling_kv (k integer PRIMARY KEY, v bigint NOT NULL)");
        var script = Path.Combine(work, "upsert.sql");
        await File.WriteAllTextAsync(script, """
            \set k random(1, 1000000)
            INSERT INTO bench_ceiling_kv (k, v) VALUES (:k, 1) ON CONFLICT (k) DO UPDATE SET v = bench_ceiling_kv.v + 1;

            """);
        if (!OperatingSystem.IsWindows())
        {
            // pgbench runs as the postgres user: it must read the script.
            File.SetUnixFileMode(work, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
        }
        var env = new Dictionary<string, string>();
        if (!string.IsNullOrEmpty(pg.Admin.Password))
        {
            env["PGPASSWORD"] = pg.Admin.Password;
        }
        var output = new StringWriter();
        var clients = o.PgbenchClients.ToString(CultureInfo.InvariantCulture);
        var seconds = o.PgbenchSeconds.ToString(CultureInfo.InvariantCulture);
        string[] pgArgs = ["-n", "-c", clients, "-j", "2", "-T", seconds, "-f", script, "-h", pg.Admin.Host!, "-p", pg.Admin.Port.ToString(CultureInfo.InvariantCulture), "-U", pg.Admin.Username!, db];
        Say();
        Say($"== Ceiling: pgbench {string.Join(' ', pgArgs)} (single-row upsert, synchronous_commit=on)");
        await Silo.ProcessRunner.RunAsync(Path.Combine(pg.BinDirectory, "pgbench"), pgArgs, BenchPostgres.AsRoot && pg.Private, "pgbench", environment: env, output: output);
        var match = TpsPattern().Match(output.ToString());
        if (!match.Success)
        {
            throw new InvalidOperationException("pgbench printed no tps:\n" + output);
        }
        var tps = double.Parse(match.Groups[1].Value, CultureInfo.InvariantCulture);
        var latency = LatencyPattern().Match(output.ToString());
        Say($"   ceiling               {tps:F0} commits/s" + (latency.Success ? $" (average latency {latency.Groups[1].Value} ms)" : ""));
        // One client: the latency of one durable commit, which every sequential write in a request pays.
        var single = new StringWriter();
        string[] oneArgs = ["-n", "-c", "1", "-j", "1", "-T", "5", "-f", script, "-h", pg.Admin.Host!, "-p", pg.Admin.Port.ToString(CultureInfo.InvariantCulture), "-U", pg.Admin.Username!, db];
        await Silo.ProcessRunner.RunAsync(Path.Combine(pg.BinDirectory, "pgbench"), oneArgs, BenchPostgres.AsRoot && pg.Private, "pgbench", environment: env, output: single);
        var oneTps = TpsPattern().Match(single.ToString());
        var oneLatency = LatencyPattern().Match(single.ToString());
        _singleClientTps = oneTps.Success ? double.Parse(oneTps.Groups[1].Value, CultureInfo.InvariantCulture) : double.NaN;
        _singleClientLatency = oneLatency.Success ? oneLatency.Groups[1].Value : "n/a";
        Say($"   one client            {_singleClientTps:F0} commits/s, {_singleClientLatency} ms per durable commit");
        await Sql.ExecuteAsync(cs, "DROP TABLE bench_ceiling_kv");
        return tps;
    }

    [GeneratedRegex(@"tps = ([0-9.]+) \(without initial connection time\)")]
    private static partial Regex TpsPattern();

    [GeneratedRegex(@"latency average = ([0-9.]+) ms")]
    private static partial Regex LatencyPattern();
}
