namespace Escrow.Benchmarks;

/// <summary>CPU (utime+stime, in clock ticks of 1/100 s) and RSS from /proc.</summary>
public static class ProcStat
{
    public const double TicksPerSecond = 100.0; // USER_HZ on Linux

    private readonly record struct Stat(int Pid, string Comm, int Ppid, long UTime, long STime, long CUTime, long CSTime, long RssPages);

    private static Stat? Read(int pid)
    {
        string text;
        try
        {
            text = File.ReadAllText($"/proc/{pid}/stat");
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
        var open = text.IndexOf('(', StringComparison.Ordinal);
        var close = text.LastIndexOf(')');
        var comm = text[(open + 1)..close];
        var f = text[(close + 2)..].Split(' ');
        // f[0] is field 3 (state): field n is f[n - 3].
        long L(int field) => long.Parse(f[field - 3], CultureInfo.InvariantCulture);
        return new Stat(pid, comm, (int)L(4), L(14), L(15), L(16), L(17), L(24));
    }

    /// <summary>Own CPU of one process (not its children).</summary>
    public static long CpuTicks(int pid) => Read(pid) is { } s ? s.UTime + s.STime : 0;

    public static long RssBytes(int pid) => Read(pid) is { } s ? s.RssPages * Environment.SystemPageSize : 0;

    /// <summary>
    /// PostgreSQL's CPU: every process named postgres under the postmaster (or every postgres process on the
    /// machine when the server is not ours), plus the postmaster's reaped children (cutime+cstime) so that
    /// backends which exited during the interval still count.
    /// </summary>
    public static long PostgresCpuTicks(int? postmaster)
    {
        var all = new List<Stat>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (int.TryParse(Path.GetFileName(dir), NumberStyles.Integer, CultureInfo.InvariantCulture, out var pid) && Read(pid) is { Comm: "postgres" } s)
            {
                all.Add(s);
            }
        }
        var pids = all.Select(s => s.Pid).ToHashSet();
        long total = 0;
        foreach (var s in all)
        {
            var isRoot = postmaster is { } pm ? s.Pid == pm : !pids.Contains(s.Ppid);
            var inTree = postmaster is null || s.Pid == postmaster || s.Ppid == postmaster;
            if (!inTree)
            {
                continue;
            }
            total += s.UTime + s.STime + (isRoot ? s.CUTime + s.CSTime : 0);
        }
        return total;
    }

    public static string CpuModel()
    {
        try
        {
            return File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith("model name", StringComparison.Ordinal))?.Split(':', 2)[1].Trim() ?? "unknown";
        }
        catch (IOException)
        {
            return "unknown";
        }
    }

    public static double MemTotalGiB()
    {
        var line = File.ReadLines("/proc/meminfo").First(l => l.StartsWith("MemTotal:", StringComparison.Ordinal));
        var kb = long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);
        return kb / 1024.0 / 1024.0;
    }

    /// <summary>Busy CPU ticks of the whole machine (all cores) from /proc/stat: everything but idle and iowait.</summary>
    public static long MachineBusyTicks()
    {
        var f = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(v => long.Parse(v, CultureInfo.InvariantCulture)).ToArray();
        return f.Take(8).Sum() - f[3] - f[4];
    }

    public static string LoadAverage() => File.ReadAllText("/proc/loadavg").Split(' ')[0];
}

/// <summary>A CPU sample of the API, PostgreSQL, this load generator and the emulators' process (if separate) over an interval.</summary>
public sealed class CpuMeter(int apiPid, int? postmaster, int? emulatorsPid = null)
{
    private long _api;
    private long _emulators;
    private long _pg;
    private long _self;
    private long _machine;
    private DateTime _at;

    public CpuMeter Start()
    {
        _api = ProcStat.CpuTicks(apiPid);
        _pg = ProcStat.PostgresCpuTicks(postmaster);
        _self = ProcStat.CpuTicks(Environment.ProcessId);
        _emulators = emulatorsPid is { } e ? ProcStat.CpuTicks(e) : 0;
        _machine = ProcStat.MachineBusyTicks();
        _at = DateTime.UtcNow;
        return this;
    }

    public CpuSample Stop()
    {
        var seconds = (DateTime.UtcNow - _at).TotalSeconds;
        return new CpuSample(seconds,
            (ProcStat.CpuTicks(apiPid) - _api) / ProcStat.TicksPerSecond,
            (ProcStat.PostgresCpuTicks(postmaster) - _pg) / ProcStat.TicksPerSecond,
            (ProcStat.CpuTicks(Environment.ProcessId) - _self) / ProcStat.TicksPerSecond,
            (ProcStat.MachineBusyTicks() - _machine) / ProcStat.TicksPerSecond,
            emulatorsPid is { } e ? (ProcStat.CpuTicks(e) - _emulators) / ProcStat.TicksPerSecond : 0);
    }
}

/// <summary>CPU seconds used during WallSeconds; percentages are of one core (200 % = both cores of a 2-core machine).</summary>
/// <param name="EmulatorSeconds">The emulators' process, when they run apart from the API (else their CPU is the API's).</param>
public sealed record CpuSample(double WallSeconds, double ApiSeconds, double PostgresSeconds, double LoadGeneratorSeconds, double MachineSeconds, double EmulatorSeconds = 0)
{
    /// <summary>CPU used by everything else on the machine (other users' builds and tests): contention the figures suffered.</summary>
    public double OtherPercent => 100 * Math.Max(0, MachineSeconds - ApiSeconds - PostgresSeconds - LoadGeneratorSeconds - EmulatorSeconds) / WallSeconds;

    public double MachinePercent => 100 * MachineSeconds / WallSeconds;

    public double ApiPercent => 100 * ApiSeconds / WallSeconds;
    public double PostgresPercent => 100 * PostgresSeconds / WallSeconds;
    public double LoadGeneratorPercent => 100 * LoadGeneratorSeconds / WallSeconds;
    public double ApiShare => ApiSeconds / Math.Max(1e-9, ApiSeconds + PostgresSeconds);

    public override string ToString() => string.Create(CultureInfo.InvariantCulture,
        $"API {ApiSeconds:F1} s ({ApiPercent:F0} % of a core), PostgreSQL {PostgresSeconds:F1} s ({PostgresPercent:F0} %), load generator {LoadGeneratorSeconds:F1} s ({LoadGeneratorPercent:F0} %){(EmulatorSeconds > 0 ? $", emulators {EmulatorSeconds:F1} s ({100 * EmulatorSeconds / WallSeconds:F0} %)" : "")} over {WallSeconds:F1} s; API share of API+PG = {100 * ApiShare:F0} %; machine busy {MachinePercent:F0} % of {100 * Environment.ProcessorCount} %, other processes {OtherPercent:F0} %");
}
