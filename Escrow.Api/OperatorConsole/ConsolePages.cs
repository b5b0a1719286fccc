using Microsoft.AspNetCore.Antiforgery;

namespace Escrow.Api.OperatorConsole;

/// <summary>The console's routes and the layout every page shares. Each page is drawn on the server; no script runs.</summary>
public static class ConsolePages
{
    /// <summary>No inline script or style anywhere: the one stylesheet (and the sender page's one script) come from the app.</summary>
    public const string ContentSecurityPolicy = "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

    public static void MapConsole(this IEndpointRouteBuilder app)
    {
        var console = app.MapGroup("/console").ExcludeFromDescription();
        console.MapConsoleSignIn();
        var pages = console.MapGroup("").RequireAuthorization(ConsoleAuth.Policy).RequireAntiforgeryToken();
        pages.MapOverview();
        pages.MapEscrowPages();
        pages.MapOperationPages();
        pages.MapAuditPage();
        app.MapConsoleAssets();
    }

    public static Markup Token(HttpContext http)
    {
        var tokens = http.RequestServices.GetRequiredService<IAntiforgery>().GetAndStoreTokens(http);
        return Html.Of($"<input type=\"hidden\" name=\"{tokens.FormFieldName}\" value=\"{tokens.RequestToken}\">");
    }

    private static readonly (string Path, string Label)[] Navigation =
    [
        ("/console", "Overview"), ("/console/escrows", "Escrows"), ("/console/alerts", "Alerts"), ("/console/breaker", "Circuit breaker"),
        ("/console/reconciliation", "Reconciliation"), ("/console/audit", "Audit log"), ("/console/privacy", "Personal data"),
    ];

    public static IResult Page(HttpContext http, string title, Markup body, int status = StatusCodes.Status200OK, bool signedIn = true)
    {
        var path = http.Request.Path.Value ?? "";
        var nav = signedIn
            ? Html.Of($"""
                <nav aria-label="Console">
                  <ul>{Navigation.Select(n => Html.Of($"<li><a href=\"{n.Path}\"{(Current(path, n.Path) ? new Markup(" aria-current=\"page\"") : Markup.Empty)}>{n.Label}</a></li>"))}</ul>
                  <form method="post" action="/console/signout">{Token(http)}<button type="submit" class="link">Sign out</button></form>
                </nav>
                """)
            : Markup.Empty;
        var html = Html.Of($"""
            <!doctype html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <title>{title} · Escrow console</title>
            <link rel="stylesheet" href="/assets/app.css">
            </head>
            <body>
            <a class="skip" href="#main">Skip to content</a>
            <header><p class="brand">Escrow console</p>{nav}</header>
            <main id="main">
            {body}
            </main>
            </body>
            </html>
            """);
        return new HtmlResult(html.Value, status);
    }

    private static bool Current(string path, string link) =>
        link == "/console" ? path is "/console" or "/console/" : path.StartsWith(link, StringComparison.Ordinal);

    /// <summary>An HTML page that no cache keeps, which no other site may frame, and in which only the app's own files run.</summary>
    public sealed class HtmlResult(string html, int status) : IResult
    {
        public async Task ExecuteAsync(HttpContext http)
        {
            http.Response.StatusCode = status;
            http.Response.ContentType = "text/html; charset=utf-8";
            http.Response.Headers.CacheControl = "no-store";
            http.Response.Headers.ContentSecurityPolicy = ContentSecurityPolicy;
            http.Response.Headers.XContentTypeOptions = "nosniff";
            http.Response.Headers["Referrer-Policy"] = "no-referrer";
            await http.Response.WriteAsync(html, Encoding.UTF8);
        }
    }

    /// <summary>A confirmation step: the same form again, with the operator's fields kept and <c>confirm=yes</c> added.</summary>
    public static IResult Confirm(HttpContext http, string title, Markup question, string action, IEnumerable<(string Name, string Value)> fields, string cancelHref)
    {
        var body = Html.Of($"""
            <h1>{title}</h1>
            {question}
            <form method="post" action="{action}" class="stack">
              {Token(http)}
              {fields.Select(f => Html.Of($"<input type=\"hidden\" name=\"{f.Name}\" value=\"{f.Value}\">"))}
              <input type="hidden" name="confirm" value="yes">
              <div class="actions"><button type="submit" class="danger">Confirm: {title}</button> <a href="{cancelHref}">Cancel</a></div>
            </form>
            """);
        return Page(http, title, body);
    }
}
