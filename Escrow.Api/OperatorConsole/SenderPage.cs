using System.Collections.Frozen;

namespace Escrow.Api.OperatorConsole;

/// <summary>
/// The sender's status page, <c>/e/{escrowId}#t=accessToken</c>. The server sends the same page for every id and knows
/// nothing of the token: the app's script reads the fragment and calls <c>GET /v1/escrows/{id}</c> with it, so a wrong
/// or missing token gets the API's refusal and the page says only that the link does not work.
/// </summary>
public static class SenderPage
{
    public static void MapSenderPage(this IEndpointRouteBuilder app) =>
        app.MapGet("/e/{escrowId}", (string escrowId) => new ConsolePages.HtmlResult(Page.Value, StatusCodes.Status200OK)).ExcludeFromDescription();

    /// <summary>Another public page (the recipient's onboarding pages) in this page's layout: the stylesheet, no script.</summary>
    public static IResult PublicPage(int status, string title, Markup body) => new ConsolePages.HtmlResult(Html.Of($"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{title}</title>
        <link rel="stylesheet" href="/assets/app.css">
        </head>
        <body>
        <header><p class="brand">Escrow</p></header>
        <main id="main">
        <div class="card">
        <h1>{title}</h1>
        {body}
        </div>
        </main>
        </body>
        </html>
        """).Value, status);

    private static readonly Markup Page = Html.Of($"""
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Your message</title>
        <link rel="stylesheet" href="/assets/app.css">
        <script src="/assets/sender.js" defer></script>
        </head>
        <body>
        <header><p class="brand">Escrow</p></header>
        <main id="main">
        <div class="card">
        <p id="loading" role="status">Looking up your message…</p>
        <div id="escrow" hidden>
          <h1>Your message</h1>
          <p>Status: <strong class="status" id="status"></strong></p>
          <p id="explanation" class="lead"></p>
          <dl>
            <dt>Amount held</dt><dd id="amount" class="big"></dd>
            <dt>To</dt><dd id="recipient"></dd>
            <dt>Deadline</dt><dd id="deadline"></dd>
            <dt>Time left</dt><dd id="time-left"></dd>
          </dl>
          <h2>What happens next</h2>
          <p id="next"></p>
        </div>
        <div id="refused" hidden>
          <h1>This link does not work</h1>
          <p>The link is incomplete or not valid. Open it again from your receipt e-mail, without changing it.</p>
        </div>
        <noscript><p>This page needs JavaScript to read your link.</p></noscript>
        </div>
        </main>
        </body>
        </html>
        """);
}

/// <summary>The app's own static files (one stylesheet, one script), embedded in the assembly and served with a short cache.</summary>
public static class ConsoleAssets
{
    private static readonly FrozenDictionary<string, (byte[] Content, string Type)> Files = new[] { ("app.css", "text/css; charset=utf-8"), ("sender.js", "text/javascript; charset=utf-8") }
        .ToFrozenDictionary(f => f.Item1, f => (Read(f.Item1), f.Item2));

    public static void MapConsoleAssets(this IEndpointRouteBuilder app) =>
        app.MapGet("/assets/{name}", (string name, HttpContext http) =>
        {
            if (!Files.TryGetValue(name, out var file))
            {
                return Results.NotFound();
            }
            http.Response.Headers.CacheControl = "public, max-age=300";
            http.Response.Headers.XContentTypeOptions = "nosniff";
            return Results.Bytes(file.Content, file.Type);
        }).ExcludeFromDescription();

    private static byte[] Read(string name)
    {
        using var stream = typeof(ConsoleAssets).Assembly.GetManifestResourceStream("console-assets/" + name)
            ?? throw new InvalidOperationException($"The embedded asset {name} is missing from the build.");
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }
}
