namespace Escrow.Api.OperatorConsole;

/// <summary>The first page: where the money is, what is stuck, what is alerting, the breaker, and the last 48 hours.</summary>
public static class OverviewPage
{
    public const int ChartHours = 48;
    public const int StuckShownMax = 20;
    public const int OpenAlertsCountedMax = 1_000;

    /// <summary>The statuses in which the sender's money is authorised or captured and not yet paid out or given back.</summary>
    public static readonly string[] HoldingStatuses = ["held", "processing", "pending_user_setup", "transfer_failed", "refund_pending"];

    public static void MapOverview(this RouteGroupBuilder pages) => pages.MapGet("", async (HttpContext http, IEscrowStore store, IGrainFactory grains, TimeProvider clock, IOptions<MonitorOptions> monitor) =>
    {
        var now = clock.GetUtcNow();
        var counts = await store.CountByStatusAsync();
        var stuck = await store.QueryEscrowsAsync(new EscrowQuery(StuckOnly: true, Now: now, Rules: monitor.Value.Rules(), Limit: StuckShownMax));
        var alerts = await store.ListAlertsAsync(openOnly: true, OpenAlertsCountedMax);
        var breaker = await grains.GetGrain<ICircuitBreakerGrain>(0).GetAsync();
        var end = new DateTimeOffset(now.UtcDateTime.Date.AddHours(now.UtcDateTime.Hour + 1), TimeSpan.Zero);
        var hours = await store.CountLifecyclesPerHourAsync(end.AddHours(-ChartHours), end);

        var held = counts.Where(c => HoldingStatuses.Contains(c.Status)).GroupBy(c => c.Currency)
            .Select(g => Html.Of($"<li><strong>{Html.Money(g.Sum(c => c.AmountMinor), g.Key)}</strong> in {g.Sum(c => c.Count)} escrows</li>")).ToList();
        var body = Html.Of($"""
            <h1>Overview</h1>
            <section aria-labelledby="money"><h2 id="money">Money held</h2>
            {(held.Count == 0 ? Html.Of($"<p>No money is held.</p>") : Html.Of($"<ul class=\"figures\">{held}</ul>"))}
            <table><caption>Escrows by status</caption><thead><tr><th scope="col">Status</th><th scope="col">Currency</th><th scope="col" class="num">Escrows</th><th scope="col" class="num">Amount</th></tr></thead>
            <tbody>{counts.Select(c => Html.Of($"<tr><td><a href=\"/console/escrows?status={c.Status}\">{c.Status}</a></td><td>{c.Currency}</td><td class=\"num\">{c.Count}</td><td class=\"num\">{Html.Money(c.AmountMinor, c.Currency)}</td></tr>"))}</tbody></table>
            </section>
            <section aria-labelledby="stuck"><h2 id="stuck">Stuck escrows</h2>
            {(stuck.Items.Count == 0 ? Html.Of($"<p>None.</p>") : Html.Of($"<ul>{stuck.Items.Select(p => Html.Of($"<li><a href=\"/console/escrows/{p.EscrowId}\">{p.EscrowId}</a> {p.Status} since {Html.Time(p.StatusChangedAt)}</li>"))}</ul><p><a href=\"/console/escrows?stuck=true\">All stuck escrows</a></p>"))}
            </section>
            <section aria-labelledby="alerts"><h2 id="alerts">Unacknowledged alerts</h2>
            {(alerts.Count == 0 ? Html.Of($"<p>None.</p>") : Html.Of($"<ul class=\"figures\">{alerts.GroupBy(a => a.Severity).OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => Html.Of($"<li><a href=\"/console/alerts?severity={g.Key}\"><strong>{g.Count()}{(alerts.Count >= OpenAlertsCountedMax ? "+" : "")}</strong> {g.Key}</a></li>"))}</ul>"))}
            </section>
            <section aria-labelledby="breaker"><h2 id="breaker">Circuit breaker</h2>
            {BreakerPage.Summary(breaker)}
            </section>
            <section aria-labelledby="chart"><h2 id="chart">Lifecycles per hour, last {ChartHours} hours</h2>
            {LifecycleChart.Draw(hours, end.AddHours(-ChartHours), ChartHours)}
            </section>
            """);
        return ConsolePages.Page(http, "Overview", body);
    });
}

/// <summary>An inline SVG bar chart drawn on the server: three bars per hour (created, released, refunded) and a data table for screen readers.</summary>
public static class LifecycleChart
{
    private const int Width = 960;
    private const int Height = 220;
    private const int Left = 40;
    private const int Bottom = 24;

    public static Markup Draw(IReadOnlyList<HourlyLifecycleCount> counts, DateTimeOffset start, int hours)
    {
        var byHour = counts.ToDictionary(c => c.Hour.ToUniversalTime());
        var max = Math.Max(1, counts.Select(c => Math.Max(c.Created, Math.Max(c.Released, c.Refunded))).DefaultIfEmpty(0).Max());
        var slot = (Width - Left) / (double)hours;
        var bar = slot / 3.5;
        var plot = Height - Bottom - 8;
        var bars = new List<Markup>();
        var labels = new List<Markup>();
        for (var i = 0; i < hours; i++)
        {
            var hour = start.AddHours(i);
            byHour.TryGetValue(hour, out var c);
            var values = new[] { ("created", c?.Created ?? 0), ("released", c?.Released ?? 0), ("refunded", c?.Refunded ?? 0) };
            for (var k = 0; k < values.Length; k++)
            {
                var (kind, value) = values[k];
                if (value == 0)
                {
                    continue;
                }
                var h = Math.Max(1, value * plot / (double)max);
                bars.Add(Html.Of($"<rect class=\"{kind}\" x=\"{F(Left + i * slot + k * bar)}\" y=\"{F(Height - Bottom - h)}\" width=\"{F(bar)}\" height=\"{F(h)}\"><title>{hour:HH}:00 UTC: {value} {kind}</title></rect>"));
            }
            if (i % 6 == 0)
            {
                labels.Add(Html.Of($"<text x=\"{F(Left + i * slot)}\" y=\"{Height - 6}\">{hour:dd HH}h</text>"));
            }
        }
        var total = (Created: counts.Sum(c => c.Created), Released: counts.Sum(c => c.Released), Refunded: counts.Sum(c => c.Refunded));
        return Html.Of($"""
            <figure class="chart">
            <svg viewBox="0 0 {Width} {Height}" role="img" aria-labelledby="chart-title" preserveAspectRatio="none">
            <title id="chart-title">Escrows created, released and refunded per hour (UTC); the highest bar is {max}</title>
            <line class="axis" x1="{Left}" y1="{Height - Bottom}" x2="{Width}" y2="{Height - Bottom}"></line>
            <text x="0" y="16">{max}</text><text x="0" y="{Height - Bottom}">0</text>
            {bars}
            {labels}
            </svg>
            <figcaption><span class="key created">created {total.Created}</span> <span class="key released">released {total.Released}</span> <span class="key refunded">refunded {total.Refunded}</span> in the last {hours} hours</figcaption>
            </figure>
            <details><summary>The same figures as a table</summary>
            <table><thead><tr><th scope="col">Hour (UTC)</th><th scope="col" class="num">Created</th><th scope="col" class="num">Released</th><th scope="col" class="num">Refunded</th></tr></thead>
            <tbody>{counts.Select(c => Html.Of($"<tr><td>{Html.Time(c.Hour)}</td><td class=\"num\">{c.Created}</td><td class=\"num\">{c.Released}</td><td class=\"num\">{c.Refunded}</td></tr>"))}</tbody></table>
            </details>
            """);
    }

    private static string F(double value) => value.ToString("0.#", CultureInfo.InvariantCulture);
}
