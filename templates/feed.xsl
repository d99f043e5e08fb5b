<?xml version="1.0" encoding="UTF-8"?>
<!--
  feed.xsl turns an msitfeed RSS 2.0 or Atom 1.0 document opened in a
  browser into a readable page: what the feed is, how to subscribe to it,
  and its posts. Feed readers ignore it. It shows text only: the HTML bodies
  of the posts are left to the feed readers and the original pages.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">
  <xsl:output method="html" encoding="UTF-8" indent="yes" doctype-system="about:legacy-compat"/>

  <xsl:variable name="title" select="/rss/channel/title | /atom:feed/atom:title"/>
  <xsl:variable name="self" select="/rss/channel/atom:link[@rel='self']/@href | /atom:feed/atom:link[@rel='self']/@href"/>

  <xsl:template match="/">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="$title"/> (feed)</title>
        <link rel="stylesheet" href="/static/style.css"/>
      </head>
      <body>
        <header><a href="/" class="brand">msitfeed</a><xsl:text> </xsl:text><span class="tag">Korea's Ministry of Science and ICT, as feeds and a newsletter</span></header>
        <main>
          <h1 id="feed-title"><xsl:value-of select="$title"/></h1>
          <p><xsl:value-of select="/rss/channel/description | /atom:feed/atom:subtitle"/></p>
          <div class="note" id="subscribe-note">
            <p><strong>This is a feed.</strong> To follow it, copy this URL into your feed reader (Feedly, Inoreader, NetNewsWire, Thunderbird…):</p>
            <code class="url"><xsl:value-of select="$self"/></code>
            <p>New to feeds? A feed reader collects new posts from the sites you follow. Prefer email? <a href="/#subscribe">Get a digest by email</a>.</p>
          </div>
          <h2>Latest posts</h2>
          <ul class="items" id="items">
            <xsl:apply-templates select="/rss/channel/item | /atom:feed/atom:entry"/>
          </ul>
        </main>
        <footer>Posts come from <a href="https://www.msit.go.kr/eng/index.do">www.msit.go.kr</a>. This is an unofficial mirror; each item links to the original.</footer>
      </body>
    </html>
  </xsl:template>

  <!-- RSS 2.0 -->
  <xsl:template match="item">
    <li class="item">
      <a href="{link}" class="item-title"><xsl:value-of select="title"/></a>
      <br/>
      <span class="meta">
        <xsl:value-of select="substring(pubDate, 1, 16)"/>
        <xsl:if test="dc:creator"> · <xsl:value-of select="dc:creator"/></xsl:if>
      </span>
      <xsl:if test="normalize-space(description)">
        <br/><xsl:value-of select="description"/>
      </xsl:if>
      <xsl:if test="enclosure">
        <br/><span class="meta">Attachment: <a href="{enclosure/@url}"><xsl:value-of select="enclosure/@type"/></a></span>
      </xsl:if>
    </li>
  </xsl:template>

  <!-- Atom 1.0 -->
  <xsl:template match="atom:entry">
    <li class="item">
      <a href="{atom:link[not(@rel) or @rel='alternate'][1]/@href}" class="item-title"><xsl:value-of select="atom:title"/></a>
      <br/>
      <span class="meta">
        <xsl:choose>
          <xsl:when test="atom:published"><xsl:value-of select="substring(atom:published, 1, 10)"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="substring(atom:updated, 1, 10)"/></xsl:otherwise>
        </xsl:choose>
        <xsl:if test="atom:author/atom:name"> · <xsl:value-of select="atom:author/atom:name"/></xsl:if>
      </span>
      <xsl:if test="normalize-space(atom:summary)">
        <br/><xsl:value-of select="atom:summary"/>
      </xsl:if>
      <xsl:if test="atom:link[@rel='enclosure']">
        <br/><span class="meta">Attachments:
          <xsl:for-each select="atom:link[@rel='enclosure']">
            <xsl:if test="position() &gt; 1">, </xsl:if>
            <a href="{@href}">
              <xsl:choose>
                <xsl:when test="@title"><xsl:value-of select="@title"/></xsl:when>
                <xsl:otherwise><xsl:value-of select="@type"/></xsl:otherwise>
              </xsl:choose>
            </a>
          </xsl:for-each>
        </span>
      </xsl:if>
    </li>
  </xsl:template>
</xsl:stylesheet>
